// Command xdrgen generates Go types, XDR encoders and decoders and the
// message table of package ndmp from the XDR source file ndmp.x.
//
// It understands the subset of RFC 4506 that the NDMP v4 appendix uses:
// const, enum, struct, discriminated union with optional default arm,
// typedef, fixed and variable-length arrays, opaque data, strings and
// optional data. Usage (see the go:generate line in package ndmp):
//
//	go run ./internal/xdrgen -in ndmp.x -out zmessages.go
package main

import (
	"bytes"
	"flag"
	"fmt"
	"go/format"
	"log"
	"os"
	"sort"
	"strings"
)

func main() {
	in := flag.String("in", "ndmp.x", "XDR source file")
	out := flag.String("out", "zmessages.go", "Go output file")
	pkg := flag.String("pkg", "ndmp", "Go package name")
	flag.Parse()
	src, err := os.ReadFile(*in)
	if err != nil {
		log.Fatal(err)
	}
	s, err := parse(string(src))
	if err != nil {
		log.Fatalf("%s: %v", *in, err)
	}
	g := &gen{s: s, pkg: *pkg, source: *in}
	code, err := g.generate()
	if err != nil {
		log.Fatalf("%s: %v", *in, err)
	}
	formatted, err := format.Source(code)
	if err != nil {
		_ = os.WriteFile(*out+".broken", code, 0o644)
		log.Fatalf("format generated code: %v", err)
	}
	if err := os.WriteFile(*out, formatted, 0o644); err != nil {
		log.Fatal(err)
	}
}

// typeNames overrides the Go name derived from an XDR type name.
var typeNames = map[string]string{
	"ndmp_error":                  "Error",
	"ndmp_message":                "MessageCode",
	"ndmp_header_message_type":    "MessageType",
	"ndmp_header":                 "Header",
	"ndmp_auth_text":              "TextAuth",
	"ndmp_auth_md5":               "MD5Auth",
	"ndmp_has_associated_message": "AssociatedMessageFlag",
}

// initialisms maps lower-case words to their Go spelling.
var initialisms = map[string]string{
	"id": "ID", "os": "OS", "ip": "IP", "fs": "FS", "cdb": "CDB", "tcp": "TCP",
	"ipc": "IPC", "md5": "MD5", "fh": "FH", "nt": "NT", "dos": "DOS", "scsi": "SCSI",
	"ipv6": "IPv6", "eom": "EOM", "eof": "EOF", "eow": "EOW", "fsf": "FSF", "bsf": "BSF",
	"fsr": "FSR", "bsr": "BSR", "rew": "REW", "tur": "TUR", "off": "Off", "mtio": "MTIO",
	"cab": "CAB", "cae": "CAE", "rbe": "RBE", "na": "NA", "ndmp": "NDMP", "utf8": "UTF8",
	"xdr": "XDR", "hostid": "HostID", "datain": "DataIn", "dataout": "DataOut",
	"rdwr": "RDWR", "dandn": "DandN", "blockno": "BlockNo", "uns": "Uns",
	"netapp": "NetApp", "butype": "Butype", "wr": "Wr",
}

func camel(s string) string {
	var b strings.Builder
	for _, w := range strings.Split(strings.ToLower(s), "_") {
		if w == "" {
			continue
		}
		if r, ok := initialisms[w]; ok {
			b.WriteString(r)
			continue
		}
		b.WriteString(strings.ToUpper(w[:1]) + w[1:])
	}
	return b.String()
}

type gen struct {
	s      *spec
	pkg    string
	source string
	buf    bytes.Buffer
	// messages in code order, filled by messageTable.
	msgs []msg
	// bodyCode maps a body type's XDR name to its message constant.
	bodyCode map[string]string
	bodyRole map[string]string
	// emptyBodies are request bodies the XDR does not define (no arguments).
	emptyBodies []string
}

type msg struct {
	xdrName, goName string
	value           uint64
	request, reply  string // XDR type names ("" = none)
	post            bool
}

func (g *gen) p(format string, args ...any) { fmt.Fprintf(&g.buf, format, args...) }

func isMessageEnum(name string) bool {
	return name == "ndmp_message" || strings.HasSuffix(name, "_ext_message")
}

func isErrorEnum(name string) bool { return name == "ndmp_error" }

// goType returns the Go name of a named XDR type.
func (g *gen) goType(x string) string {
	if isMessageEnum(x) {
		return "MessageCode"
	}
	if n, ok := typeNames[x]; ok {
		return n
	}
	return camel(strings.TrimPrefix(x, "ndmp_"))
}

// constName returns the Go name of an enum value or constant.
func (g *gen) constName(enum, x string) string {
	base := strings.TrimPrefix(x, "NDMP_")
	if isErrorEnum(enum) {
		if base == "NO_ERR" {
			return "NoErr"
		}
		return "Err" + camel(strings.TrimSuffix(base, "_ERR"))
	}
	return camel(base)
}

var prims = map[string]string{
	"u_long": "uint32", "unsigned": "uint32", "long": "int32", "int": "int32",
	"u_short": "uint16", "short": "int16", "u_char": "uint8", "bool": "bool",
	"hyper": "int64", "u_hyper": "uint64", "ndmp_u_quad": "uint64",
}

var primEnc = map[string]string{
	"uint32": "Uint32", "int32": "Int32", "uint16": "Uint16", "int16": "Int16",
	"uint8": "Uint8", "bool": "Bool", "int64": "Int64", "uint64": "Uint64",
}

// resolve replaces a reference to a typedef of a built-in type by the
// typedef's own declaration.
func (g *gen) resolve(d decl) decl {
	if td, ok := g.s.typedefs[d.typ]; ok && g.isAliasTypedef(td) && d.array == 0 && !d.optional {
		r := td.d
		r.name = d.name
		return r
	}
	return d
}

func (g *gen) isAliasTypedef(td *typedefDef) bool {
	_, p := prims[td.d.typ]
	return p || td.d.typ == "string" || td.d.typ == "opaque"
}

func (g *gen) isEnum(x string) bool { _, ok := g.s.enums[x]; return ok }

// elemGo returns the Go type of one element of d (ignoring arrays).
func (g *gen) elemGo(d decl) string {
	switch d.typ {
	case "string":
		return "string"
	case "opaque":
		return "byte"
	}
	if p, ok := prims[d.typ]; ok {
		return p
	}
	return g.goType(d.typ)
}

func (g *gen) fieldGo(d decl) string {
	d = g.resolve(d)
	t := g.elemGo(d)
	switch {
	case d.typ == "string":
		t = "string"
	case d.typ == "opaque" && d.array == '[':
		t = "[" + g.sizeExpr(d.size) + "]byte"
	case d.typ == "opaque":
		t = "[]byte"
	case d.array == '<':
		t = "[]" + t
	case d.array == '[':
		t = "[" + g.sizeExpr(d.size) + "]" + t
	}
	if d.optional {
		t = "*" + t
	}
	return t
}

func (g *gen) sizeExpr(s string) string {
	v, err := g.s.value(s)
	if err != nil {
		panic(err)
	}
	return fmt.Sprint(v)
}

// minSize is the smallest number of bytes an encoding of d can take.
func (g *gen) minSize(d decl) int {
	d = g.resolve(d)
	if d.optional || (d.array == '<') || d.typ == "string" {
		return 4
	}
	if d.typ == "void" {
		return 0
	}
	if d.typ == "opaque" {
		n := int(g.mustValue(d.size))
		return (n + 3) &^ 3
	}
	n := 1
	if d.array == '[' {
		n = int(g.mustValue(d.size))
	}
	return n * g.typeMin(d.typ)
}

func (g *gen) mustValue(s string) uint64 {
	v, err := g.s.value(s)
	if err != nil {
		panic(err)
	}
	return v
}

func (g *gen) typeMin(x string) int {
	if x == "ndmp_u_quad" || x == "hyper" || x == "u_hyper" {
		return 8
	}
	if _, ok := prims[x]; ok || g.isEnum(x) {
		return 4
	}
	if st, ok := g.s.structs[x]; ok {
		n := 0
		for _, f := range st.fields {
			n += g.minSize(f)
		}
		return n
	}
	if u, ok := g.s.unions[x]; ok {
		m := -1
		for _, c := range u.cases {
			if s := g.minSize(c.arm); m < 0 || s < m {
				m = s
			}
		}
		if u.def != nil {
			if s := g.minSize(*u.def); m < 0 || s < m {
				m = s
			}
		}
		if m < 0 {
			m = 0
		}
		return 4 + m
	}
	if td, ok := g.s.typedefs[x]; ok {
		return g.minSize(td.d)
	}
	panic("unknown type " + x)
}

// enc writes statements encoding the value expression v declared by d.
func (g *gen) enc(d decl, v string, depth int) {
	d = g.resolve(d)
	if d.optional {
		g.p("if %s == nil { e.Bool(false) } else { e.Bool(true)\n", v)
		d.optional = false
		g.encElem(d, "(*"+v+")", depth)
		g.p("}\n")
		return
	}
	g.encElem(d, v, depth)
}

func (g *gen) encElem(d decl, v string, depth int) {
	switch {
	case d.typ == "void":
		return
	case d.typ == "string":
		g.boundCheckEnc(d, v)
		g.p("e.String(%s)\n", v)
		return
	case d.typ == "opaque" && d.array == '[':
		g.p("e.FixedOpaque(%s[:], %s)\n", v, g.sizeExpr(d.size))
		return
	case d.typ == "opaque":
		g.boundCheckEnc(d, v)
		g.p("e.Opaque(%s)\n", v)
		return
	case d.array == '<':
		g.boundCheckEnc(d, v)
		g.p("e.ArrayLen(len(%s))\n", v)
		fallthrough
	case d.array == '[':
		i := fmt.Sprintf("i%d", depth)
		g.p("for %s := range %s {\n", i, v)
		e := d
		e.array = 0
		g.encElem(e, v+"["+i+"]", depth+1)
		g.p("}\n")
		return
	}
	if p, ok := prims[d.typ]; ok {
		g.p("e.%s(%s)\n", primEnc[p], v)
		return
	}
	if g.isEnum(d.typ) {
		g.p("e.Uint32(uint32(%s))\n", v)
		return
	}
	g.p("%s.MarshalXDR(e)\n", v)
}

func (g *gen) boundCheckEnc(d decl, v string) {
	if d.size == "" {
		return
	}
	g.p("if len(%s) > %s { e.SetErr(fmt.Errorf(\"ndmp: %s longer than %s\")) }\n", v, g.sizeExpr(d.size), d.name, g.sizeExpr(d.size))
}

// dec writes statements decoding into the addressable expression v.
func (g *gen) dec(d decl, v string, depth int) {
	d = g.resolve(d)
	if d.optional {
		g.p("if d.Optional() { %s = new(%s)\n", v, strings.TrimPrefix(g.fieldGo(d), "*"))
		d.optional = false
		g.decElem(d, "(*"+v+")", depth)
		g.p("}\n")
		return
	}
	g.decElem(d, v, depth)
}

func (g *gen) decElem(d decl, v string, depth int) {
	switch {
	case d.typ == "void":
		return
	case d.typ == "string":
		g.p("%s = d.StringValue()\n", v)
		g.boundCheckDec(d, v)
		return
	case d.typ == "opaque" && d.array == '[':
		g.p("d.FixedOpaqueInto(%s[:])\n", v)
		return
	case d.typ == "opaque":
		g.p("%s = d.Opaque()\n", v)
		g.boundCheckDec(d, v)
		return
	case d.array == '<':
		e := d
		e.array = 0
		n := fmt.Sprintf("n%d", depth)
		g.p("if %s := d.ArrayLen(%d); %s > 0 {\n", n, g.minSize(e), n)
		if d.size != "" {
			g.p("if %s > %s { d.SetErr(fmt.Errorf(\"ndmp: %s longer than %s\")); %s = 0 }\n", n, g.sizeExpr(d.size), d.name, g.sizeExpr(d.size), n)
		}
		g.p("%s = make(%s, %s)\n", v, g.fieldGo(d), n)
		i := fmt.Sprintf("i%d", depth)
		g.p("for %s := range %s {\n", i, v)
		g.decElem(e, v+"["+i+"]", depth+1)
		g.p("}\n}\n")
		return
	case d.array == '[':
		e := d
		e.array = 0
		i := fmt.Sprintf("i%d", depth)
		g.p("for %s := range %s {\n", i, v)
		g.decElem(e, v+"["+i+"]", depth+1)
		g.p("}\n")
		return
	}
	if p, ok := prims[d.typ]; ok {
		g.p("%s = d.%s()\n", v, primEnc[p])
		return
	}
	if g.isEnum(d.typ) {
		g.p("%s = %s(d.Uint32())\n", v, g.goType(d.typ))
		return
	}
	g.p("%s.UnmarshalXDR(d)\n", v)
}

func (g *gen) boundCheckDec(d decl, v string) {
	if d.size == "" {
		return
	}
	g.p("if len(%s) > %s { d.SetErr(fmt.Errorf(\"ndmp: %s longer than %s\")) }\n", v, g.sizeExpr(d.size), d.name, g.sizeExpr(d.size))
}

func docLines(doc string) string {
	if doc == "" {
		return ""
	}
	return "//\n// " + doc + "\n"
}

func (g *gen) generate() ([]byte, error) {
	if err := g.messageTable(); err != nil {
		return nil, err
	}
	g.p("// Code generated by xdrgen from %s; DO NOT EDIT.\n\n", g.source)
	g.p("package %s\n\nimport (\n\"fmt\"\n\n\"github.com/tapestry-ndmp/tapestry/ndmp/xdr\"\n)\n\n", g.pkg)
	g.genConsts()
	g.genEnums()
	for _, o := range g.s.order {
		kind, name, _ := strings.Cut(o, ":")
		switch kind {
		case "struct":
			if name == "ndmp_u_quad" {
				continue
			}
			g.genStruct(g.s.structs[name])
		case "union":
			g.genUnion(g.s.unions[name])
		case "typedef":
			g.genTypedef(g.s.typedefs[name])
		}
	}
	for _, n := range g.emptyBodies {
		g.p("// %s is the body of %s; it has no fields.\ntype %s struct{}\n\n", g.goType(n), g.roleDoc(n), g.goType(n))
		g.p("// MarshalXDR appends nothing: the body is empty.\nfunc (m *%s) MarshalXDR(e *xdr.Encoder) {}\n\n", g.goType(n))
		g.p("// UnmarshalXDR decodes nothing: the body is empty.\nfunc (m *%s) UnmarshalXDR(d *xdr.Decoder) error { return d.Err() }\n\n", g.goType(n))
		g.p("// MessageCode returns %s.\nfunc (*%s) MessageCode() MessageCode { return %s }\n\n", g.bodyCode[n], g.goType(n), g.constName("ndmp_message", g.bodyCode[n]))
	}
	g.genTable()
	return g.buf.Bytes(), nil
}

func (g *gen) roleDoc(xdrName string) string {
	return fmt.Sprintf("the %s of %s", g.bodyRole[xdrName], g.bodyCode[xdrName])
}

func (g *gen) genConsts() {
	g.p("// Constants of the NDMP XDR definitions.\nconst (\n")
	for _, o := range g.s.order {
		kind, name, _ := strings.Cut(o, ":")
		if kind != "const" {
			continue
		}
		c := g.s.consts[name]
		doc := c.doc
		if doc == "" {
			doc = "is the XDR constant " + name + "."
		} else {
			doc = "(" + name + "): " + doc
		}
		g.p("// %s %s\n", g.constName("", name), doc)
		v := c.value
		if _, err := g.s.value(v); err == nil {
			if _, isNum := g.s.consts[v]; !isNum {
				if n, err := parseNum(v); err == nil {
					v = n
				} else {
					v = g.enumConstFor(v)
				}
			} else {
				v = g.constName("", v)
			}
		}
		g.p("%s = %s\n", g.constName("", name), v)
	}
	g.p(")\n\n")
}

func parseNum(v string) (string, error) {
	if len(v) > 0 && v[0] >= '0' && v[0] <= '9' {
		return v, nil
	}
	return "", fmt.Errorf("not a number")
}

func (g *gen) enumConstFor(v string) string {
	for en, e := range g.s.enums {
		for _, ev := range e.values {
			if ev.name == v {
				return g.constName(en, v)
			}
		}
	}
	return v
}

func (g *gen) genEnums() {
	// Gather enums per Go type (message enums share MessageCode).
	type val struct{ goName, xdrName, value, doc string }
	byType := map[string][]val{}
	docs := map[string]string{}
	xdrNames := map[string][]string{}
	var order []string
	for _, o := range g.s.order {
		kind, name, _ := strings.Cut(o, ":")
		if kind != "enum" {
			continue
		}
		e := g.s.enums[name]
		t := g.goType(name)
		if _, seen := byType[t]; !seen {
			order = append(order, t)
		}
		xdrNames[t] = append(xdrNames[t], name)
		if docs[t] == "" {
			docs[t] = e.doc
		}
		for _, v := range e.values {
			if isMessageEnum(name) && strings.HasSuffix(v.name, "_BASE") {
				g.p("// %s (%s) is the first message code of its extension range.\nconst %s = %s\n\n", g.constName(name, v.name), v.name, g.constName(name, v.name), v.value)
				continue
			}
			byType[t] = append(byType[t], val{g.constName(name, v.name), v.name, v.value, v.doc})
		}
	}
	for _, t := range order {
		g.p("// %s is the XDR enumeration %s.\n%s", t, strings.Join(xdrNames[t], ", "), docLines(docs[t]))
		g.p("type %s uint32\n\n", t)
		g.p("// Values of %s.\nconst (\n", t)
		for _, v := range byType[t] {
			if v.doc != "" {
				g.p("// %s: %s\n", v.xdrName, v.doc)
			}
			g.p("%s %s = %s // %s\n", v.goName, t, v.value, v.xdrName)
		}
		g.p(")\n\n")
		g.p("// String returns the XDR name of v, or the number for an unknown value.\nfunc (v %s) String() string {\nswitch v {\n", t)
		seen := map[string]bool{}
		for _, v := range byType[t] {
			num := g.mustValue(v.value)
			k := fmt.Sprint(num)
			if seen[k] {
				continue
			}
			seen[k] = true
			g.p("case %s: return %q\n", v.goName, v.xdrName)
		}
		g.p("}\nreturn fmt.Sprintf(\"%s(%%#x)\", uint32(v))\n}\n\n", t)
	}
	// A list of all message codes for tests and tools.
}

func (g *gen) genStruct(st *structDef) {
	t := g.goType(st.name)
	g.typeDoc(st.name, t, "struct", st.doc)
	g.p("type %s struct {\n", t)
	for _, f := range st.fields {
		g.p("%s %s\n", camel(f.name), g.fieldGo(f))
	}
	g.p("}\n\n")
	g.p("// MarshalXDR appends the XDR encoding of m to e.\nfunc (m *%s) MarshalXDR(e *xdr.Encoder) {\n", t)
	for _, f := range st.fields {
		g.enc(f, "m."+camel(f.name), 0)
	}
	g.p("}\n\n")
	g.p("// UnmarshalXDR decodes m from d.\nfunc (m *%s) UnmarshalXDR(d *xdr.Decoder) error {\n", t)
	for _, f := range st.fields {
		g.dec(f, "m."+camel(f.name), 0)
	}
	g.p("return d.Err()\n}\n\n")
	if code, ok := g.bodyCode[st.name]; ok {
		g.p("// MessageCode returns %s.\nfunc (*%s) MessageCode() MessageCode { return %s }\n\n", code, t, g.constName("ndmp_message", code))
	}
	if g.hasErrorField(st.name) {
		g.errorMethods(t)
	}
}

// errorMethods writes the methods of the ErrorReply interface for the
// type t, which has a field Error of type Error.
func (g *gen) errorMethods(t string) {
	g.p("// ReplyError returns the error field of the body.\nfunc (m *%s) ReplyError() Error { return m.Error }\n\n", t)
	g.p("// SetReplyError sets the error field of the body to e.\nfunc (m *%s) SetReplyError(e Error) { m.Error = e }\n\n", t)
}

// hasErrorField reports whether the struct x (or the struct a typedef x
// names) has a field "error" of type ndmp_error.
func (g *gen) hasErrorField(x string) bool {
	if td, ok := g.s.typedefs[x]; ok {
		return g.hasErrorField(td.d.typ)
	}
	st, ok := g.s.structs[x]
	if !ok {
		return false
	}
	for _, f := range st.fields {
		if f.name == "error" && f.typ == "ndmp_error" && f.array == 0 {
			return true
		}
	}
	return false
}

func (g *gen) typeDoc(xdrName, t, kind, doc string) {
	if code, ok := g.bodyCode[xdrName]; ok {
		g.p("// %s is %s (XDR %s %s).\n%s", t, g.roleDoc(xdrName), kind, xdrName, docLines(doc))
		_ = code
		return
	}
	g.p("// %s is the XDR %s %s.\n%s", t, kind, xdrName, docLines(doc))
}

func (g *gen) genUnion(u *unionDef) {
	t := g.goType(u.name)
	g.typeDoc(u.name, t, "union", u.doc)
	g.p("//\n// The field %s selects which other field is encoded:", camel(u.disc.name))
	for _, c := range u.cases {
		var ls []string
		for _, l := range c.labels {
			ls = append(ls, g.constName(u.disc.typ, l))
		}
		arm := "nothing"
		if c.arm.typ != "void" {
			arm = camel(c.arm.name)
		}
		g.p(" %s for %s;", arm, strings.Join(ls, ", "))
	}
	if u.def != nil {
		g.p(" %s for any other value.\n", camel(u.def.name))
	} else {
		g.p(" any other value is an encoding error.\n")
	}
	g.p("type %s struct {\n%s %s\n", t, camel(u.disc.name), g.fieldGo(u.disc))
	arms := append([]unionCase(nil), u.cases...)
	if u.def != nil {
		arms = append(arms, unionCase{nil, *u.def})
	}
	for _, c := range arms {
		if c.arm.typ != "void" {
			g.p("%s %s\n", camel(c.arm.name), g.fieldGo(c.arm))
		}
	}
	g.p("}\n\n")
	dv := "m." + camel(u.disc.name)
	g.p("// MarshalXDR appends the XDR encoding of m to e.\nfunc (m *%s) MarshalXDR(e *xdr.Encoder) {\n", t)
	g.enc(u.disc, dv, 0)
	g.p("switch %s {\n", dv)
	for _, c := range u.cases {
		g.p("case %s:\n", g.labels(u, c.labels))
		g.enc(c.arm, "m."+camel(c.arm.name), 0)
	}
	g.p("default:\n")
	if u.def != nil {
		g.enc(*u.def, "m."+camel(u.def.name), 0)
	} else {
		g.p("e.SetErr(fmt.Errorf(\"ndmp: %s: no arm for %%v\", %s))\n", t, dv)
	}
	g.p("}\n}\n\n")
	g.p("// UnmarshalXDR decodes m from d.\nfunc (m *%s) UnmarshalXDR(d *xdr.Decoder) error {\n", t)
	g.dec(u.disc, dv, 0)
	g.p("switch %s {\n", dv)
	for _, c := range u.cases {
		g.p("case %s:\n", g.labels(u, c.labels))
		g.dec(c.arm, "m."+camel(c.arm.name), 0)
	}
	g.p("default:\n")
	if u.def != nil {
		g.dec(*u.def, "m."+camel(u.def.name), 0)
	} else {
		g.p("d.SetErr(fmt.Errorf(\"ndmp: %s: no arm for %%v\", %s))\n", t, dv)
	}
	g.p("}\nreturn d.Err()\n}\n\n")
	// Arm metadata for tests that build values of every arm.
	g.p("func (*%s) xdrArms() []unionArm {\nreturn []unionArm{\n", t)
	for _, c := range u.cases {
		f := ""
		if c.arm.typ != "void" {
			f = camel(c.arm.name)
		}
		for _, l := range c.labels {
			g.p("{uint32(%s), %q},\n", g.constName(u.disc.typ, l), f)
		}
	}
	if u.def != nil {
		g.p("{xdrDefaultArm, %q},\n", camel(u.def.name))
	}
	g.p("}\n}\n\n")
}

func (g *gen) labels(u *unionDef, ls []string) string {
	var out []string
	for _, l := range ls {
		out = append(out, g.constName(u.disc.typ, l))
	}
	return strings.Join(out, ", ")
}

func (g *gen) genTypedef(td *typedefDef) {
	t := g.goType(td.d.name)
	if g.isAliasTypedef(td) {
		g.p("// %s is the XDR typedef %s.\n%stype %s = %s\n\n", t, td.d.name, docLines(td.doc), t, g.fieldGo(decl{typ: td.d.typ, array: td.d.array, size: td.d.size}))
		return
	}
	base := g.goType(td.d.typ)
	if code, ok := g.bodyCode[td.d.name]; ok {
		g.p("// %s is %s (XDR typedef %s of %s).\n%s", t, g.roleDoc(td.d.name), td.d.name, td.d.typ, docLines(td.doc))
		_ = code
	} else {
		g.p("// %s is the XDR typedef %s of %s.\n%s", t, td.d.name, td.d.typ, docLines(td.doc))
	}
	g.p("type %s %s\n\n", t, base)
	g.p("// MarshalXDR appends the XDR encoding of m to e.\nfunc (m *%s) MarshalXDR(e *xdr.Encoder) { (*%s)(m).MarshalXDR(e) }\n\n", t, base)
	g.p("// UnmarshalXDR decodes m from d.\nfunc (m *%s) UnmarshalXDR(d *xdr.Decoder) error { return (*%s)(m).UnmarshalXDR(d) }\n\n", t, base)
	if code, ok := g.bodyCode[td.d.name]; ok {
		g.p("// MessageCode returns %s.\nfunc (*%s) MessageCode() MessageCode { return %s }\n\n", code, t, g.constName("ndmp_message", code))
	}
	if g.hasErrorField(td.d.name) {
		g.errorMethods(t)
	}
	if _, isUnion := g.s.unions[td.d.typ]; isUnion {
		g.p("func (m *%s) xdrArms() []unionArm { return (*%s)(m).xdrArms() }\n\n", t, base)
	}
}

// noReply lists requests that have no reply.
var noReply = map[string]bool{"NDMP_CONNECT_CLOSE": true}

func (g *gen) exists(x string) bool {
	_, s := g.s.structs[x]
	_, t := g.s.typedefs[x]
	return s || t
}

func (g *gen) messageTable() error {
	g.bodyCode = map[string]string{}
	g.bodyRole = map[string]string{}
	for _, o := range g.s.order {
		kind, name, _ := strings.Cut(o, ":")
		if kind != "enum" || !isMessageEnum(name) {
			continue
		}
		for _, v := range g.s.enums[name].values {
			if strings.HasSuffix(v.name, "_BASE") {
				continue
			}
			base := "ndmp_" + strings.ToLower(strings.TrimPrefix(v.name, "NDMP_"))
			m := msg{xdrName: v.name, goName: g.constName(name, v.name), value: g.mustValue(v.value)}
			switch {
			case g.exists(base + "_post"):
				m.post = true
				m.request = base + "_post"
				g.bodyRole[m.request] = "post"
			case g.exists(base + "_request"):
				m.request = base + "_request"
				g.bodyRole[m.request] = "request"
			default:
				m.request = base + "_request"
				g.bodyRole[m.request] = "request"
				g.emptyBodies = append(g.emptyBodies, m.request)
			}
			g.bodyCode[m.request] = v.name
			if !m.post && !noReply[v.name] {
				if !g.exists(base + "_reply") {
					return fmt.Errorf("message %s has no reply type %s_reply", v.name, base)
				}
				m.reply = base + "_reply"
				g.bodyCode[m.reply] = v.name
				g.bodyRole[m.reply] = "reply"
			}
			g.msgs = append(g.msgs, m)
		}
	}
	sort.Slice(g.msgs, func(i, j int) bool { return g.msgs[i].value < g.msgs[j].value })
	return nil
}

func (g *gen) genTable() {
	g.p("// messageCodes lists every message code of the table, in numeric order.\nvar messageCodes = [...]MessageCode{\n")
	for _, m := range g.msgs {
		g.p("%s,\n", m.goName)
	}
	g.p("}\n\n")
	g.p("// lookupMessage returns the table entry of a message code.\nfunc lookupMessage(c MessageCode) (messageInfo, bool) {\nswitch c {\n")
	for _, m := range g.msgs {
		rep := "nil"
		if m.reply != "" {
			rep = fmt.Sprintf("func() Body { return new(%s) }", g.goType(m.reply))
		}
		g.p("case %s:\nreturn messageInfo{Code: %s, Name: %q, Post: %v, newRequest: func() Body { return new(%s) }, newReply: %s}, true\n",
			m.goName, m.goName, m.xdrName, m.post, g.goType(m.request), rep)
	}
	g.p("}\nreturn messageInfo{}, false\n}\n")
}
