package main

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
)

// token is one lexical item of an XDR source file.
type token struct {
	text    string
	line    int
	comment string // the comment that directly precedes the token, if any
}

// lex splits src into tokens, attaching each /* */ comment to the token that
// follows it.
func lex(src string) ([]token, error) {
	var toks []token
	line := 1
	pending := ""
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == '\n':
			line++
			i++
		case c == ' ' || c == '\t' || c == '\r':
			i++
		case strings.HasPrefix(src[i:], "/*"):
			end := strings.Index(src[i+2:], "*/")
			if end < 0 {
				return nil, fmt.Errorf("line %d: unterminated comment", line)
			}
			body := src[i+2 : i+2+end]
			line += strings.Count(body, "\n")
			pending = cleanComment(body)
			i += end + 4
		case strings.ContainsRune("{}<>[]();=,:*", rune(c)):
			toks = append(toks, token{string(c), line, pending})
			pending = ""
			i++
		case c == '_' || unicode.IsLetter(rune(c)) || unicode.IsDigit(rune(c)):
			j := i
			for j < len(src) && (src[j] == '_' || unicode.IsLetter(rune(src[j])) || unicode.IsDigit(rune(src[j]))) {
				j++
			}
			toks = append(toks, token{src[i:j], line, pending})
			pending = ""
			i = j
		default:
			return nil, fmt.Errorf("line %d: unexpected character %q", line, c)
		}
	}
	return toks, nil
}

func cleanComment(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimSpace(l)
		l = strings.TrimPrefix(l, "*")
		l = strings.TrimSpace(l)
		if l != "" {
			out = append(out, l)
		}
	}
	return strings.Join(out, " ")
}

// decl is a declaration: a field, a union arm or a typedef.
type decl struct {
	typ      string // XDR type name: u_long, string, opaque, ndmp_pval, void...
	name     string
	array    byte   // 0 (scalar), '<' (variable) or '[' (fixed)
	size     string // bound of a fixed array ("" for unbounded variable)
	optional bool
}

type enumValue struct {
	name, value, doc string
}

type enumDef struct {
	name, doc string
	values    []enumValue
}

type constDef struct{ name, value, doc string }

type structDef struct {
	name, doc string
	fields    []decl
}

type unionCase struct {
	labels []string
	arm    decl
}

type unionDef struct {
	name, doc string
	disc      decl
	cases     []unionCase
	def       *decl
}

type typedefDef struct {
	doc string
	d   decl
}

// spec is a parsed XDR file, kept in source order.
type spec struct {
	order    []string // kind:name in source order
	enums    map[string]*enumDef
	consts   map[string]*constDef
	structs  map[string]*structDef
	unions   map[string]*unionDef
	typedefs map[string]*typedefDef
}

type parser struct {
	toks []token
	pos  int
}

func (p *parser) peek() token {
	if p.pos >= len(p.toks) {
		return token{text: ""}
	}
	return p.toks[p.pos]
}

func (p *parser) next() token {
	t := p.peek()
	p.pos++
	return t
}

func (p *parser) expect(s string) error {
	t := p.next()
	if t.text != s {
		return fmt.Errorf("line %d: want %q, got %q", t.line, s, t.text)
	}
	return nil
}

func parse(src string) (*spec, error) {
	toks, err := lex(src)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks}
	s := &spec{
		enums: map[string]*enumDef{}, consts: map[string]*constDef{},
		structs: map[string]*structDef{}, unions: map[string]*unionDef{},
		typedefs: map[string]*typedefDef{},
	}
	for p.pos < len(p.toks) {
		t := p.next()
		switch t.text {
		case "enum":
			e := &enumDef{name: p.next().text, doc: t.comment}
			if err := p.expect("{"); err != nil {
				return nil, err
			}
			for p.peek().text != "}" {
				n := p.next()
				if err := p.expect("="); err != nil {
					return nil, err
				}
				e.values = append(e.values, enumValue{n.text, p.next().text, n.comment})
				if p.peek().text == "," {
					p.next()
				}
			}
			p.next()
			if err := p.expect(";"); err != nil {
				return nil, err
			}
			s.enums[e.name] = e
			s.order = append(s.order, "enum:"+e.name)
		case "const":
			c := &constDef{name: p.next().text, doc: t.comment}
			if err := p.expect("="); err != nil {
				return nil, err
			}
			c.value = p.next().text
			if err := p.expect(";"); err != nil {
				return nil, err
			}
			s.consts[c.name] = c
			s.order = append(s.order, "const:"+c.name)
		case "struct":
			st := &structDef{name: p.next().text, doc: t.comment}
			if err := p.expect("{"); err != nil {
				return nil, err
			}
			for p.peek().text != "}" {
				d, err := p.decl()
				if err != nil {
					return nil, err
				}
				st.fields = append(st.fields, d)
			}
			p.next()
			if err := p.expect(";"); err != nil {
				return nil, err
			}
			s.structs[st.name] = st
			s.order = append(s.order, "struct:"+st.name)
		case "union":
			u := &unionDef{name: p.next().text, doc: t.comment}
			if err := p.expect("switch"); err != nil {
				return nil, err
			}
			if err := p.expect("("); err != nil {
				return nil, err
			}
			d, err := p.declNoSemi()
			if err != nil {
				return nil, err
			}
			u.disc = d
			if err := p.expect(")"); err != nil {
				return nil, err
			}
			if err := p.expect("{"); err != nil {
				return nil, err
			}
			var labels []string
			for p.peek().text != "}" {
				switch p.peek().text {
				case "case":
					p.next()
					labels = append(labels, p.next().text)
					if err := p.expect(":"); err != nil {
						return nil, err
					}
					continue
				case "default":
					p.next()
					if err := p.expect(":"); err != nil {
						return nil, err
					}
					d, err := p.decl()
					if err != nil {
						return nil, err
					}
					u.def = &d
					continue
				}
				d, err := p.decl()
				if err != nil {
					return nil, err
				}
				if len(labels) == 0 {
					return nil, fmt.Errorf("union %s: arm %s without case", u.name, d.name)
				}
				u.cases = append(u.cases, unionCase{labels, d})
				labels = nil
			}
			p.next()
			if err := p.expect(";"); err != nil {
				return nil, err
			}
			s.unions[u.name] = u
			s.order = append(s.order, "union:"+u.name)
		case "typedef":
			d, err := p.decl()
			if err != nil {
				return nil, err
			}
			s.typedefs[d.name] = &typedefDef{doc: t.comment, d: d}
			s.order = append(s.order, "typedef:"+d.name)
		default:
			return nil, fmt.Errorf("line %d: unexpected %q at top level", t.line, t.text)
		}
	}
	return s, nil
}

func (p *parser) decl() (decl, error) {
	d, err := p.declNoSemi()
	if err != nil {
		return d, err
	}
	return d, p.expect(";")
}

func (p *parser) declNoSemi() (decl, error) {
	var d decl
	t := p.next()
	if t.text == "struct" || t.text == "enum" || t.text == "union" {
		t = p.next()
	}
	d.typ = t.text
	if d.typ == "void" {
		return d, nil
	}
	if p.peek().text == "*" {
		p.next()
		d.optional = true
	}
	d.name = p.next().text
	switch p.peek().text {
	case "<":
		p.next()
		d.array = '<'
		if p.peek().text != ">" {
			d.size = p.next().text
		}
		if err := p.expect(">"); err != nil {
			return d, err
		}
	case "[":
		p.next()
		d.array = '['
		d.size = p.next().text
		if err := p.expect("]"); err != nil {
			return d, err
		}
	}
	if d.name == "" || d.typ == "" {
		return d, fmt.Errorf("line %d: bad declaration", t.line)
	}
	return d, nil
}

// value evaluates a constant expression: a number or a constant name.
func (s *spec) value(v string) (uint64, error) { return s.valueDepth(v, 0) }

func (s *spec) valueDepth(v string, depth int) (uint64, error) {
	if depth > 32 {
		return 0, fmt.Errorf("constant %q: definition loop", v)
	}
	if n, err := strconv.ParseUint(v, 0, 64); err == nil {
		return n, nil
	}
	if c, ok := s.consts[v]; ok {
		return s.valueDepth(c.value, depth+1)
	}
	for _, e := range s.enums {
		for _, ev := range e.values {
			if ev.name == v {
				return s.valueDepth(ev.value, depth+1)
			}
		}
	}
	return 0, fmt.Errorf("unknown constant %q", v)
}
