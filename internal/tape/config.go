package tape

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ErrConfig is wrapped by every tape configuration file error.
var ErrConfig = errors.New("tape: invalid tape configuration file")

// Field size limits of a tape configuration file.
const (
	maxVendorID    = 8
	maxProductID   = 16
	maxPretty      = 16
	maxDescription = 24
	maxConfigSize  = 64 << 10
)

// Density is the density code, compression algorithm and description of
// one compression type (l, m, h or a) of a drive.
type Density struct {
	Description string // up to 24 bytes, shown by device listings
	Density     byte   // density code for the mode page block descriptor
	Algorithm   byte   // compression algorithm for the compression mode page
}

// Config is a parsed tape configuration file: how to recognise a drive by
// its SCSI INQUIRY vendor and product and how to use its densities (T4).
type Config struct {
	VendorID      string // up to 8 bytes, as INQUIRY reports it
	ProductID     string // up to 16 bytes
	IDMatchSize   int    // bytes of ProductID compared, from the first
	VendorPretty  string // optional; set together with ProductPretty
	ProductPretty string
	// Densities holds the l, m, h and a settings in that order.
	Densities [4]Density
	Autoload  bool
	// Timeouts maps a SCSI operation code to its command timeout.
	Timeouts map[byte]time.Duration
	// Source is where the configuration came from (a file name or
	// "built-in").
	Source string
}

// Density returns the settings of compression type c.
func (c *Config) Density(comp Compression) Density {
	for i, x := range compressions {
		if x == comp {
			return c.Densities[i]
		}
	}
	return Density{}
}

// Vendor returns the vendor name listings show: VendorPretty when set,
// otherwise VendorID.
func (c *Config) Vendor() string {
	if c.VendorPretty != "" {
		return c.VendorPretty
	}
	return c.VendorID
}

// Product returns the product name listings show: ProductPretty when set,
// otherwise ProductID.
func (c *Config) Product() string {
	if c.ProductPretty != "" {
		return c.ProductPretty
	}
	return c.ProductID
}

// Matches reports whether a drive whose INQUIRY data reports vendor and
// product is the drive this configuration describes: the vendor
// identification equal (trailing blanks ignored) and the first IDMatchSize
// bytes of the product identification equal.
func (c *Config) Matches(vendor, product string) bool {
	if strings.TrimRight(vendor, " \x00") != c.VendorID {
		return false
	}
	n := c.IDMatchSize
	want := c.ProductID
	if len(want) < n {
		want += strings.Repeat(" ", n-len(want))
	}
	if len(product) < n {
		product += strings.Repeat(" ", n-len(product))
	}
	return product[:n] == want[:n]
}

// ParseConfig parses a tape configuration file. Lines are name=value with
// string values in double quotes; blank lines and lines starting with '#'
// are ignored. vendor_id and product_id are required; id_match_size
// defaults to the length of product_id.
func ParseConfig(data []byte) (*Config, error) {
	if len(data) > maxConfigSize {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrConfig, maxConfigSize)
	}
	c := &Config{IDMatchSize: -1}
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 1024), maxConfigSize)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || text[0] == '#' {
			continue
		}
		eq := strings.IndexByte(text, '=')
		if eq < 0 {
			return nil, fmt.Errorf("%w: line %d: expected name=value", ErrConfig, line)
		}
		key := strings.TrimSpace(text[:eq])
		raw := strings.TrimSpace(text[eq+1:])
		if seen[key] {
			return nil, fmt.Errorf("%w: line %d: %s given twice", ErrConfig, line, key)
		}
		seen[key] = true
		if err := c.set(key, raw); err != nil {
			return nil, fmt.Errorf("%w: line %d: %s: %v", ErrConfig, line, key, err)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	if c.VendorID == "" {
		return nil, fmt.Errorf("%w: vendor_id is missing", ErrConfig)
	}
	if c.ProductID == "" {
		return nil, fmt.Errorf("%w: product_id is missing", ErrConfig)
	}
	if c.IDMatchSize < 0 {
		c.IDMatchSize = len(c.ProductID)
	}
	if c.IDMatchSize > len(c.ProductID) {
		return nil, fmt.Errorf("%w: id_match_size %d is longer than product_id %q", ErrConfig, c.IDMatchSize, c.ProductID)
	}
	if (c.VendorPretty == "") != (c.ProductPretty == "") {
		return nil, fmt.Errorf("%w: vendor_pretty and product_pretty must be given together", ErrConfig)
	}
	return c, nil
}

func (c *Config) set(key, raw string) error {
	switch key {
	case "vendor_id":
		return setString(&c.VendorID, raw, maxVendorID, true)
	case "product_id":
		return setString(&c.ProductID, raw, maxProductID, true)
	case "vendor_pretty":
		return setString(&c.VendorPretty, raw, maxPretty, true)
	case "product_pretty":
		return setString(&c.ProductPretty, raw, maxPretty, true)
	case "id_match_size":
		n, err := parseDecimal(unquote(raw), maxProductID)
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("must be at least 1")
		}
		c.IDMatchSize = n
		return nil
	case "autoload":
		switch strings.ToLower(unquote(raw)) {
		case "yes":
			c.Autoload = true
		case "no":
			c.Autoload = false
		default:
			return fmt.Errorf("%q is not yes or no", raw)
		}
		return nil
	}
	if strings.HasPrefix(key, "cmd_timeout_0x") || strings.HasPrefix(key, "cmd_timeout_0X") {
		op, err := strconv.ParseUint(key[len("cmd_timeout_0x"):], 16, 8)
		if err != nil {
			return fmt.Errorf("operation code is not a hexadecimal byte")
		}
		d, err := parseTimeout(unquote(raw))
		if err != nil {
			return err
		}
		if c.Timeouts == nil {
			c.Timeouts = map[byte]time.Duration{}
		}
		if _, dup := c.Timeouts[byte(op)]; dup {
			return fmt.Errorf("timeout for operation 0x%02x given twice", op)
		}
		c.Timeouts[byte(op)] = d
		return nil
	}
	if len(key) > 2 && key[1] == '_' && Compression(key[0]).Valid() {
		d := &c.Densities[strings.IndexByte("lmha", key[0])]
		switch key[2:] {
		case "description":
			return setString(&d.Description, raw, maxDescription, true)
		case "density":
			return setHexByte(&d.Density, raw)
		case "algorithm":
			return setHexByte(&d.Algorithm, raw)
		}
	}
	return fmt.Errorf("unknown field")
}

// unquote removes one pair of surrounding double quotes.
func unquote(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return s[1 : len(s)-1]
	}
	return s
}

func setString(dst *string, raw string, limit int, nonEmpty bool) error {
	if strings.HasPrefix(raw, "\"") != (strings.HasSuffix(raw, "\"") && len(raw) >= 2) {
		return fmt.Errorf("unbalanced quotes in %s", raw)
	}
	s := unquote(raw)
	if strings.ContainsRune(s, '"') {
		return fmt.Errorf("quote inside value %s", raw)
	}
	if nonEmpty && s == "" {
		return fmt.Errorf("empty value")
	}
	if len(s) > limit {
		return fmt.Errorf("%q is longer than %d bytes", s, limit)
	}
	for _, r := range s {
		if r < 0x20 || r > 0x7e {
			return fmt.Errorf("%q has a character that is not printable ASCII", s)
		}
	}
	*dst = s
	return nil
}

func setHexByte(dst *byte, raw string) error {
	s := unquote(raw)
	if !strings.HasPrefix(s, "0x") && !strings.HasPrefix(s, "0X") {
		return fmt.Errorf("%q is not a hexadecimal code (0xNN)", s)
	}
	v, err := strconv.ParseUint(s[2:], 16, 8)
	if err != nil {
		return fmt.Errorf("%q is not a hexadecimal byte", s)
	}
	*dst = byte(v)
	return nil
}

// parseTimeout parses a timeout in minutes (10m), seconds (30s) or
// milliseconds (500ms).
func parseTimeout(s string) (time.Duration, error) {
	var unit time.Duration
	var num string
	switch {
	case strings.HasSuffix(s, "ms"):
		unit, num = time.Millisecond, s[:len(s)-2]
	case strings.HasSuffix(s, "s"):
		unit, num = time.Second, s[:len(s)-1]
	case strings.HasSuffix(s, "m"):
		unit, num = time.Minute, s[:len(s)-1]
	default:
		return 0, fmt.Errorf("timeout %q needs a unit m, s or ms", s)
	}
	n, err := parseDecimal(num, 1_000_000)
	if err != nil {
		return 0, fmt.Errorf("timeout %q: %v", s, err)
	}
	if n == 0 {
		return 0, fmt.Errorf("timeout %q must be positive", s)
	}
	return time.Duration(n) * unit, nil
}

// SupportStatus is the qualification of a drive as
// storage tape show-supported-status reports it.
type SupportStatus string

// Support statuses.
const (
	Qualified            SupportStatus = "Qualified"
	DynamicallyQualified SupportStatus = "Dynamically Qualified"
	Nonqualified         SupportStatus = "Nonqualified tape drive"
)

// Supported reports whether a drive of this status may be used.
func (s SupportStatus) Supported() bool { return s == Qualified || s == DynamicallyQualified }

// VTLConfigText is the built-in tape configuration of the drives of
// Tapestry's virtual library (INQUIRY vendor TAPESTRY, product VTL-TAPE).
// The densities are those of the virtual cartridges: l stores records as
// written, m, h and a compress them more and more (package vtl).
const VTLConfigText = `# Tapestry virtual tape drive (package vtl)
vendor_id="TAPESTRY"
product_id="VTL-TAPE"
id_match_size=8
vendor_pretty="Tapestry"
product_pretty="VTL-TAPE"
l_description="VTL (2500GB)"
l_density=0x5a
l_algorithm=0x00
m_description="VTL (2500GB w/comp)"
m_density=0x5a
m_algorithm=0x01
h_description="VTL (4000GB w/comp)"
h_density=0x5a
h_algorithm=0x01
a_description="VTL (6250GB w/comp)"
a_density=0x5a
a_algorithm=0x01
autoload="yes"
cmd_timeout_0x01=15m
cmd_timeout_0x08=20m
cmd_timeout_0x0a=20m
`

// QualTable is a node's tape qualification table: the built-in
// configurations (Qualified) and those loaded from tape configuration
// files (Dynamically Qualified). It is not safe for concurrent
// modification; the Registry guards its own.
type QualTable struct {
	builtin []*Config
	dynamic []*Config
}

// NewQualTable returns a table holding the built-in configurations: the
// virtual library's drive.
func NewQualTable() *QualTable {
	c, err := ParseConfig([]byte(VTLConfigText))
	if err != nil {
		panic("tape: built-in configuration: " + err.Error()) // a bug in VTLConfigText
	}
	c.Source = "built-in"
	return &QualTable{builtin: []*Config{c}}
}

// Add adds a dynamically qualifying configuration. A later configuration
// for the same vendor and product replaces the earlier one.
func (q *QualTable) Add(c *Config) {
	for i, old := range q.dynamic {
		if old.VendorID == c.VendorID && old.ProductID == c.ProductID && old.IDMatchSize == c.IDMatchSize {
			q.dynamic[i] = c
			return
		}
	}
	q.dynamic = append(q.dynamic, c)
}

// LoadDir parses every regular file of dir whose name ends in .TCF or
// .tcf (NetApp's tape configuration file suffix) and adds it. It stops at
// the first bad file and names it in the error.
func (q *QualTable) LoadDir(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("tape: load configuration files: %w", err)
	}
	names := []string{}
	for _, e := range ents {
		if e.Type().IsRegular() && strings.EqualFold(filepath.Ext(e.Name()), ".tcf") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	for _, n := range names {
		p := filepath.Join(dir, n)
		data, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("tape: load configuration files: %w", err)
		}
		c, err := ParseConfig(data)
		if err != nil {
			return fmt.Errorf("tape: %s: %w", p, err)
		}
		c.Source = p
		q.Add(c)
	}
	return nil
}

// Qualify looks a drive up by its INQUIRY vendor and product. Built-in
// configurations win over loaded ones; with no match the drive is
// Nonqualified and the returned configuration is nil.
func (q *QualTable) Qualify(vendor, product string) (*Config, SupportStatus) {
	for _, c := range q.builtin {
		if c.Matches(vendor, product) {
			return c, Qualified
		}
	}
	for _, c := range q.dynamic {
		if c.Matches(vendor, product) {
			return c, DynamicallyQualified
		}
	}
	return nil, Nonqualified
}

// Configs returns the built-in then the loaded configurations, for the
// supported-drive listing (storage show tape supported).
func (q *QualTable) Configs() []*Config {
	out := append([]*Config{}, q.builtin...)
	return append(out, q.dynamic...)
}
