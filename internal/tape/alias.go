package tape

import (
	"fmt"
	"sort"
	"strconv"

	"github.com/tapestry-ndmp/tapestry/internal/catalog"
)

// Alias is a persistent alias of a node's tape drive or medium changer, as
// the catalog keeps it under "tape/alias/<node>/<name>".
type Alias struct {
	Node    string
	Name    string // st<N> or mc<N>
	Mapping string // canonical Mapping text: a PPN or SN[...]
}

// Kind returns the kind of device the alias names.
func (a Alias) Kind() DeviceKind {
	k, _, _ := parseAlias(a.Name)
	return k
}

// ClearScope selects the aliases storage tape alias clear removes.
type ClearScope string

// Clear scopes, as -clear-scope takes them.
const (
	ClearTape         ClearScope = "tape"
	ClearMediaChanger ClearScope = "media-changer"
	ClearAll          ClearScope = "all"
)

// ParseClearScope checks a -clear-scope value.
func ParseClearScope(s string) (ClearScope, error) {
	switch ClearScope(s) {
	case ClearTape, ClearMediaChanger, ClearAll:
		return ClearScope(s), nil
	}
	return "", fmt.Errorf("tape: invalid clear scope %q: must be tape, media-changer or all", s)
}

func (s ClearScope) covers(k DeviceKind) bool {
	switch s {
	case ClearAll:
		return true
	case ClearTape:
		return k == KindDrive
	case ClearMediaChanger:
		return k == KindChanger
	}
	return false
}

// aliasPrefix is the catalog key prefix of a node's aliases.
func aliasPrefix(node string) string { return catalog.Prefix("tape", "alias", node) }

func aliasKey(node, name string) string { return catalog.Key("tape", "alias", node, name) }

// listAliases returns a node's aliases sorted by kind, number and name.
func listAliases(tx catalog.Tx, node string) ([]Alias, error) {
	as, err := catalog.ListJSON[Alias](tx, aliasPrefix(node))
	if err != nil {
		return nil, fmt.Errorf("tape: list aliases of node %s: %w", node, err)
	}
	sortAliases(as)
	return as, nil
}

func sortAliases(as []Alias) {
	sort.Slice(as, func(i, j int) bool {
		ki, ni, _ := parseAlias(as[i].Name)
		kj, nj, _ := parseAlias(as[j].Name)
		if ki != kj {
			return ki < kj
		}
		if ni != nj {
			return ni < nj
		}
		return as[i].Name < as[j].Name
	})
}

// findAlias returns the alias of kind k bound to one of the mappings, or
// "".
func findAlias(as []Alias, k DeviceKind, mappings []string) string {
	for _, a := range as {
		if a.Kind() != k {
			continue
		}
		for _, m := range mappings {
			if a.Mapping == m {
				return a.Name
			}
		}
	}
	return ""
}

// assignAlias gives a new device of kind k the lowest free alias number and
// binds it to mapping, unless an alias already names one of the device's
// mappings. It returns the alias.
func assignAlias(tx catalog.Tx, node string, k DeviceKind, mapping string, all []string) (string, error) {
	as, err := listAliases(tx, node)
	if err != nil {
		return "", err
	}
	if name := findAlias(as, k, all); name != "" {
		return name, nil
	}
	used := map[string]bool{}
	for _, a := range as {
		used[a.Name] = true
	}
	for n := 0; ; n++ {
		name := k.aliasPrefix() + strconv.Itoa(n)
		if used[name] {
			continue
		}
		a := Alias{Node: node, Name: name, Mapping: mapping}
		if err := catalog.PutJSON(tx, aliasKey(node, name), a); err != nil {
			return "", fmt.Errorf("tape: assign alias %s: %w", name, err)
		}
		return name, nil
	}
}

// setAlias binds name to mapping, replacing what name pointed at. Another
// alias of the same kind bound to the same mapping is removed, so a device
// has one alias per node.
func setAlias(tx catalog.Tx, node, name, mapping string) error {
	k, _, err := ParseAlias(name)
	if err != nil {
		return err
	}
	m, err := ParseMapping(mapping)
	if err != nil {
		return err
	}
	as, err := listAliases(tx, node)
	if err != nil {
		return err
	}
	for _, a := range as {
		if a.Name != name && a.Kind() == k && a.Mapping == m.String() {
			if err := tx.Delete(aliasKey(node, a.Name)); err != nil {
				return fmt.Errorf("tape: alias set %s: %w", name, err)
			}
		}
	}
	if err := catalog.PutJSON(tx, aliasKey(node, name), Alias{Node: node, Name: name, Mapping: m.String()}); err != nil {
		return fmt.Errorf("tape: alias set %s: %w", name, err)
	}
	return nil
}
