package ndmpcopy

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/tapestry-ndmp/tapestry/ndmp"
)

// Usage is the help text that -h prints.
const Usage = `usage: ndmpcopy [options] [user:password@]source_host[:port]:/svm/volume[/path]
                         [user:password@]destination_host[:port]:/svm/volume[/path]
                         [-mcs {inet|inet6}] [-mcd {inet|inet6}] [-md {inet|inet6}]

Copies a volume, qtree, directory or file between NDMP v4 servers (a dump
backup piped into a restore). An IPv6 address must be in square brackets,
for example [2001:db8::1]:10000:/vs1/vol1. Host names and loopback
addresses are accepted.

Options:
  -sa user:[password]  source authentication (mandatory unless the source
                       endpoint carries user:password@)
  -da user:[password]  destination authentication (likewise)
  -st {md5|text}       source authentication type (mandatory)
  -dt {md5|text}       destination authentication type (default md5)
  -l level             dump level: 0 (full, the default) or 1 to 9
                       (incremental)
  -d                   write debug messages to ndmpcopy.yyyymmdd in the
                       node's mroot/etc/log (see -data-dir)
  -f                   forced mode (accepted for compatibility; recorded in
                       the debug log)
  -h                   print this help
  -p                   prompt for the source and destination passwords
                       (interactive console only; overrides -sa and -da)
  -exclude list        comma-separated names of files or directories to leave
                       out ("\," is a comma in a name; "*" first or last)
  -mcs {inet|inet6}    address mode of the control connection to the source
  -mcd {inet|inet6}    address mode of the control connection to the
                       destination
  -md {inet|inet6}     address mode of the data connection between the
                       servers (default: IPv6 if a control connection uses
                       IPv6; else IPv6 first, then IPv4)
  -data-dir dir        the node's data directory, whose mroot/etc/log holds
                       the -d log (default $TAPESTRY_DATA_DIR, else
                       ./tapestry-data)
  -connect-timeout d   how long to try to reach a server (default 30s)
  -smtape              copy the whole source volume as an SMTape image into a
                       restricted DP destination volume (a mirror: tape
                       seeding's network update); needs -snapshot
  -snapshot name       the source Snapshot copy SMTape sends
  -base-date n         with -set-id: send only what changed since the copy
                       whose DUMP_DATE was n (an incremental update of a
                       mirror seeded from tape or by an earlier copy)
  -set-id id           the backup set id of that earlier copy or tape

Exit status: 0 copied; 1 the copy failed; 2 usage error; 3 a server could
not be reached; 4 authentication refused; 5 a server refused the operation
(for example a missing path).
`

// MaxLevel is the highest dump level ndmpcopy accepts (ONTAP 9: one full and
// up to nine incremental transfers).
const MaxLevel = 9

// MaxExcludeNames is the largest number of names an exclude list may hold.
const MaxExcludeNames = 32

// Options are the parsed command line of ndmpcopy.
type Options struct {
	// Source and Dest are the two endpoints. Their User and Password are
	// filled from -sa and -da when those are given.
	Source, Dest Endpoint
	// SourceAuth and DestAuth are the authentication types (-st, -dt).
	SourceAuth, DestAuth ndmp.AuthType
	// Level is the dump level, 0 to 9 (-l).
	Level int
	// Debug enables the debug log (-d); DataDir locates it (-data-dir).
	Debug   bool
	DataDir string
	// Force is -f.
	Force bool
	// Help is -h: print Usage and do nothing else.
	Help bool
	// Prompt is -p: ask for both passwords on the terminal.
	Prompt bool
	// Exclude is the EXCLUDE list as sent to the source (-exclude; several
	// options are joined with commas).
	Exclude string
	// MCS, MCD and MD are the address modes of the source control
	// connection, the destination control connection and the data
	// connection (-mcs, -mcd, -md).
	MCS, MCD, MD Family
	// ConnectTimeout bounds the attempt to reach each server.
	ConnectTimeout time.Duration
	// SMTape copies the volume as an SMTape image (-smtape) of snapshot
	// Snapshot (-snapshot); BaseDate and SetID (-base-date, -set-id) make
	// it an incremental of an earlier image.
	SMTape          bool
	Snapshot        string
	BaseDate, SetID string
}

// UsageError is an error in the command line.
type UsageError struct{ Msg string }

// Error returns the message.
func (e *UsageError) Error() string { return e.Msg }

func usagef(format string, a ...any) error {
	return &UsageError{Msg: fmt.Sprintf(format, a...)}
}

// ParseArgs parses the arguments of ndmpcopy (without the program name).
// Options and the two endpoints may come in any order; "--" ends the
// options. getenv (may be nil) supplies TAPESTRY_DATA_DIR.
func ParseArgs(args []string, getenv func(string) string) (*Options, error) {
	o := &Options{DestAuth: ndmp.AuthMD5, ConnectTimeout: 30 * time.Second}
	var sa, da string
	var haveSA, haveDA, haveST bool
	var excl []string
	var pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			pos = append(pos, a)
			continue
		}
		name := strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
		value := func() (string, error) {
			if i+1 >= len(args) {
				return "", usagef("option -%s needs a value", name)
			}
			i++
			return args[i], nil
		}
		var v string
		var err error
		switch {
		case name == "d":
			o.Debug = true
		case name == "f":
			o.Force = true
		case name == "h" || name == "help":
			o.Help = true
		case name == "p":
			o.Prompt = true
		case name == "smtape":
			o.SMTape = true
		case name == "snapshot" || name == "base-date" || name == "set-id":
			if v, err = value(); err != nil {
				return nil, err
			}
			*map[string]*string{"snapshot": &o.Snapshot, "base-date": &o.BaseDate, "set-id": &o.SetID}[name] = v
		case name == "l" || (len(name) > 1 && name[0] == 'l' && name[1] >= '0' && name[1] <= '9'):
			v = name[1:]
			if v == "" {
				if v, err = value(); err != nil {
					return nil, err
				}
			}
			n, perr := strconv.Atoi(v)
			if perr != nil || n < 0 || n > MaxLevel || strings.HasPrefix(v, "+") {
				return nil, usagef("-l %s: the level must be a number from 0 to %d", v, MaxLevel)
			}
			o.Level = n
		case name == "sa" || name == "da" || name == "st" || name == "dt" || name == "exclude" ||
			name == "mcs" || name == "mcd" || name == "md" || name == "data-dir" || name == "connect-timeout":
			if v, err = value(); err != nil {
				return nil, err
			}
			switch name {
			case "sa":
				sa, haveSA = v, true
			case "da":
				da, haveDA = v, true
			case "st", "dt":
				t, err := parseAuthType(v)
				if err != nil {
					return nil, usagef("-%s %s: %v", name, v, err)
				}
				if name == "st" {
					o.SourceAuth, haveST = t, true
				} else {
					o.DestAuth = t
				}
			case "exclude":
				if v == "" {
					return nil, usagef("-exclude needs a list of names")
				}
				excl = append(excl, v)
			case "mcs", "mcd", "md":
				f, err := ParseFamily(v)
				if err != nil {
					return nil, usagef("-%s: %v", name, err)
				}
				switch name {
				case "mcs":
					o.MCS = f
				case "mcd":
					o.MCD = f
				default:
					o.MD = f
				}
			case "data-dir":
				o.DataDir = v
			case "connect-timeout":
				d, err := time.ParseDuration(v)
				if err != nil || d <= 0 {
					return nil, usagef("-connect-timeout %s: want a positive duration such as 10s", v)
				}
				o.ConnectTimeout = d
			}
		default:
			return nil, usagef("unknown option %s (ndmpcopy -h lists the options)", a)
		}
	}
	if o.Help {
		return o, nil
	}
	if len(pos) != 2 {
		return nil, usagef("want a source and a destination, got %d argument(s) (ndmpcopy -h for help)", len(pos))
	}
	var err error
	if o.Source, err = ParseEndpoint(pos[0]); err != nil {
		return nil, usagef("source: %v", err)
	}
	if o.Dest, err = ParseEndpoint(pos[1]); err != nil {
		return nil, usagef("destination: %v", err)
	}
	if err := applyAuth(&o.Source, "source", "-sa", sa, haveSA, o.Prompt); err != nil {
		return nil, err
	}
	if err := applyAuth(&o.Dest, "destination", "-da", da, haveDA, o.Prompt); err != nil {
		return nil, err
	}
	if !haveST {
		return nil, usagef("-st is mandatory: give -st md5 or -st text for the source")
	}
	if err := checkSMTape(o, len(excl) > 0); err != nil {
		return nil, err
	}
	if len(excl) > 0 {
		o.Exclude = strings.Join(excl, ",")
		if err := checkExclude(o.Exclude); err != nil {
			return nil, usagef("-exclude: %v", err)
		}
	}
	if o.DataDir == "" && getenv != nil {
		o.DataDir = getenv("TAPESTRY_DATA_DIR")
	}
	if o.DataDir == "" {
		o.DataDir = "./tapestry-data"
	}
	return o, nil
}

// checkSMTape checks the SMTape options against each other.
func checkSMTape(o *Options, exclude bool) error {
	if !o.SMTape {
		if o.Snapshot != "" || o.BaseDate != "" || o.SetID != "" {
			return usagef("-snapshot, -base-date and -set-id go with -smtape")
		}
		return nil
	}
	switch {
	case o.Snapshot == "":
		return usagef("-smtape needs -snapshot: SMTape sends a named Snapshot copy")
	case o.Level != 0 || exclude:
		return usagef("-smtape copies whole volumes: no -l or -exclude")
	case (o.BaseDate == "") != (o.SetID == ""):
		return usagef("-base-date and -set-id go together (both from the earlier copy's output)")
	}
	if o.BaseDate != "" {
		if n, err := strconv.ParseInt(o.BaseDate, 10, 64); err != nil || n <= 0 {
			return usagef("-base-date %s: the DUMP_DATE an earlier copy printed (a number)", o.BaseDate)
		}
	}
	return nil
}

func parseAuthType(s string) (ndmp.AuthType, error) {
	switch strings.ToLower(s) {
	case "md5":
		return ndmp.AuthMD5, nil
	case "text":
		return ndmp.AuthText, nil
	}
	return 0, errors.New("the authentication type is md5 or text")
}

// applyAuth merges -sa/-da into an endpoint and checks that there is a user
// and, unless the password will be prompted for, a password.
func applyAuth(ep *Endpoint, side, opt, v string, have, prompt bool) error {
	if have {
		if ep.HasCreds {
			return usagef("%s credentials given twice: in the endpoint and with %s", side, opt)
		}
		user, pw, _ := strings.Cut(v, ":")
		if user == "" {
			return usagef("%s %s: the user name is empty (want user:password)", opt, redactAuth(v))
		}
		ep.User, ep.Password, ep.HasCreds = user, pw, true
	}
	if !ep.HasCreds {
		return usagef("%s is mandatory: give %s user:password for the %s", opt, opt, side)
	}
	if ep.Password == "" && !prompt {
		return usagef("no password for %s user %s: give %s %s:<password> or use -p", side, ep.User, opt, ep.User)
	}
	return nil
}

func redactAuth(v string) string {
	if u, _, ok := strings.Cut(v, ":"); ok {
		return u + ":***"
	}
	return v
}

// SplitExclude splits an exclude list into names: commas separate names,
// "\," stands for a comma inside a name.
func SplitExclude(v string) []string {
	var names []string
	var cur strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == '\\' && i+1 < len(v) && v[i+1] == ',' {
			cur.WriteByte(',')
			i++
			continue
		}
		if c == ',' {
			names = append(names, cur.String())
			cur.Reset()
			continue
		}
		cur.WriteByte(c)
	}
	return append(names, cur.String())
}

// checkExclude applies the rules of ONTAP's EXCLUDE variable: no empty name,
// '*' only as the first or last character, at most 32 names.
func checkExclude(v string) error {
	names := SplitExclude(v)
	if len(names) > MaxExcludeNames {
		return fmt.Errorf("%d names; at most %d are allowed", len(names), MaxExcludeNames)
	}
	for _, n := range names {
		if n == "" {
			return errors.New("empty name in the list")
		}
		inner := strings.TrimSuffix(strings.TrimPrefix(n, "*"), "*")
		if strings.Contains(inner, "*") {
			return fmt.Errorf("name %q: '*' may only be the first or the last character", n)
		}
		if strings.Contains(n, "/") {
			return fmt.Errorf("name %q: a name may not contain '/'", n)
		}
	}
	return nil
}
