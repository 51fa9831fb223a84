package ndmp

import (
	"errors"
	"fmt"
	"sort"

	"github.com/tapestry-ndmp/tapestry/ndmp/xdr"
)

// ProtocolVersion is the NDMP protocol version this package speaks.
const ProtocolVersion = 4

// DefaultPort is the TCP port reserved for NDMP.
const DefaultPort = 10000

// HeaderSize is the size in bytes of an encoded message header.
const HeaderSize = 24

// InvalidQuad is NDMP's "no value" for a u_quad field, for example the
// node and fh_info of a name list entry without file history.
const InvalidQuad = ^uint64(0)

// Body is the body of an NDMP message: a request, a reply or a post.
// Every body type of this package implements it; MessageCode names the
// message the body belongs to.
type Body interface {
	xdr.Marshaler
	xdr.Unmarshaler
	MessageCode() MessageCode
}

// messageInfo is one row of the message table generated from ndmp.x.
type messageInfo struct {
	Code       MessageCode
	Name       string
	Post       bool
	newRequest func() Body
	newReply   func() Body // nil for a request without reply
}

// unionArm names the Go field used for one discriminant value of a union;
// the generated xdrArms methods return them (the tests use them to build
// values of every arm).
type unionArm struct {
	disc  uint32
	field string
}

// xdrDefaultArm marks the default arm of a union in xdrArms.
const xdrDefaultArm = ^uint32(0)

// Error returns the name of the NDMP error code, such as
// "NDMP_DEVICE_BUSY_ERR".
func (e Error) Error() string { return e.String() }

// MessageCodes returns the codes of all messages the package defines, in
// numeric order.
func MessageCodes() []MessageCode {
	out := append([]MessageCode(nil), messageCodes[:]...)
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// Known reports whether the package defines the message c.
func (c MessageCode) Known() bool { _, ok := lookupMessage(c); return ok }

// Class returns the extension class of c: its upper 16 bits (0 for the core
// protocol).
func (c MessageCode) Class() uint16 { return uint16(c >> 16) }

// IsPost reports whether c is a post (a notification, log or file history
// message that gets no reply).
func (c MessageCode) IsPost() bool { m, ok := lookupMessage(c); return ok && m.Post }

// HasReply reports whether a request with code c is answered by a reply.
// It is false for posts, for NDMP_CONNECT_CLOSE and for unknown codes.
func (c MessageCode) HasReply() bool { m, ok := lookupMessage(c); return ok && m.newReply != nil }

// NewRequest returns a new zero request (or post) body for message c.
func NewRequest(c MessageCode) (Body, error) {
	m, ok := lookupMessage(c)
	if !ok {
		return nil, fmt.Errorf("ndmp: unknown message %v: %w", c, ErrNotSupported)
	}
	return m.newRequest(), nil
}

// NewReply returns a new zero reply body for message c.
func NewReply(c MessageCode) (Body, error) {
	m, ok := lookupMessage(c)
	if !ok {
		return nil, fmt.Errorf("ndmp: unknown message %v: %w", c, ErrNotSupported)
	}
	if m.newReply == nil {
		return nil, fmt.Errorf("ndmp: message %v has no reply", c)
	}
	return m.newReply(), nil
}

// An ErrorReply is a reply body with an error field, the NDMP error code of
// the request's outcome. Every reply body of this package implements it.
type ErrorReply interface {
	Body
	// ReplyError returns the error field.
	ReplyError() Error
	// SetReplyError sets the error field to e.
	SetReplyError(e Error)
}

// NewErrorReply returns a new reply body for message c whose error field
// is e: what a server sends to refuse a request while keeping the reply's
// body, as the draft asks of NDMP v4 replies. It fails for an unknown
// message, a message without reply and a reply without error field.
func NewErrorReply(c MessageCode, e Error) (ErrorReply, error) {
	b, err := NewReply(c)
	if err != nil {
		return nil, err
	}
	r, ok := b.(ErrorReply)
	if !ok {
		return nil, fmt.Errorf("ndmp: the reply of %v has no error field", c)
	}
	r.SetReplyError(e)
	return r, nil
}

// IsReply reports whether the header is that of a reply.
func (h *Header) IsReply() bool { return h.MessageType == MessageReply }

// A Message is one NDMP message: a header and, unless the header carries an
// error code, a body. For a message the package does not know, or whose body
// failed to decode, Body is nil.
type Message struct {
	Header Header
	Body   Body
}

// String returns a short description of the message for logs.
func (m *Message) String() string {
	kind := "request"
	switch {
	case m.Header.IsReply():
		kind = fmt.Sprintf("reply to %d", m.Header.ReplySequence)
	case m.Header.MessageCode.IsPost():
		kind = "post"
	}
	s := fmt.Sprintf("#%d %v %s", m.Header.Sequence, m.Header.MessageCode, kind)
	if m.Header.ErrorCode != NoErr {
		s += " " + m.Header.ErrorCode.String()
	}
	return s
}

// MarshalMessage appends the encoding of m (header, then body unless the
// header carries an error) to dst and returns the extended slice.
func MarshalMessage(dst []byte, m *Message) ([]byte, error) {
	e := xdr.NewEncoder(dst)
	m.Header.MarshalXDR(e)
	if m.Header.ErrorCode == NoErr && m.Body != nil {
		if m.Body.MessageCode() != m.Header.MessageCode {
			return dst, fmt.Errorf("ndmp: body of %v in a %v message", m.Body.MessageCode(), m.Header.MessageCode)
		}
		m.Body.MarshalXDR(e)
	}
	if err := e.Err(); err != nil {
		return dst, fmt.Errorf("ndmp: encode %v: %w", m.Header.MessageCode, err)
	}
	return e.Bytes(), nil
}

// A DecodeError reports a record that holds no valid message. Header is
// valid when HeaderOK is true; Code is the NDMP error a receiver should
// answer a request with: ErrNotSupported for an unknown message code,
// ErrXDRDecode for a body that cannot be decoded.
type DecodeError struct {
	Header   Header
	HeaderOK bool
	Code     Error
	Err      error
}

// Error describes the decoding failure.
func (e *DecodeError) Error() string {
	if !e.HeaderOK {
		return fmt.Sprintf("ndmp: bad message header: %v", e.Err)
	}
	return fmt.Sprintf("ndmp: bad message %v (sequence %d): %v", e.Header.MessageCode, e.Header.Sequence, e.Err)
}

// Unwrap returns the underlying error.
func (e *DecodeError) Unwrap() error { return e.Err }

// ErrShortHeader is wrapped by the DecodeError of a record shorter than a
// message header.
var ErrShortHeader = errors.New("record shorter than a message header")

// UnmarshalMessage decodes one message from the bytes of a record. The body
// must fill the record exactly. Every failure is a *DecodeError; the
// returned Message is then nil.
//
// Two requests have a second accepted layout seen from real DMAs: a
// CONFIG_SET_EXT_LIST request in NDMJOB's form {error; class_list<>} is
// read as selecting the first version listed for each class, and a
// CAB_DATA_CONN_PREPARE request without its leading addr_type word is read
// with AddrType set to AddrTCP.
func UnmarshalMessage(b []byte) (*Message, error) {
	if len(b) < HeaderSize {
		return nil, &DecodeError{Code: ErrXDRDecode, Err: fmt.Errorf("%w: %d bytes", ErrShortHeader, len(b))}
	}
	d := xdr.NewDecoder(b)
	m := &Message{}
	_ = m.Header.UnmarshalXDR(d) // cannot fail: 24 bytes are there
	h := m.Header
	if h.MessageType != MessageRequest && h.MessageType != MessageReply {
		return nil, &DecodeError{Code: ErrXDRDecode, Err: fmt.Errorf("message type %d", uint32(h.MessageType))}
	}
	fail := func(code Error, err error) (*Message, error) {
		return nil, &DecodeError{Header: h, HeaderOK: true, Code: code, Err: err}
	}
	if h.ErrorCode != NoErr {
		if !h.IsReply() {
			return fail(ErrXDRDecode, fmt.Errorf("request with header error %v", h.ErrorCode))
		}
		// No body follows a header error, whatever the message; ignore
		// anything after the header.
		return m, nil
	}
	info, ok := lookupMessage(h.MessageCode)
	if !ok {
		return fail(ErrNotSupported, fmt.Errorf("unknown message code %#x", uint32(h.MessageCode)))
	}
	if h.IsReply() {
		if info.newReply == nil {
			return fail(ErrNotSupported, fmt.Errorf("reply to %v, which has none", h.MessageCode))
		}
		m.Body = info.newReply()
	} else {
		m.Body = info.newRequest()
	}
	if err := decodeBody(m.Body, b[HeaderSize:]); err != nil {
		return fail(ErrXDRDecode, err)
	}
	return m, nil
}

func decodeBody(body Body, b []byte) error {
	d := xdr.NewDecoder(b)
	_ = body.UnmarshalXDR(d)
	err := d.Done()
	if err == nil {
		return nil
	}
	// Class 0x2050: its bodies are only partly public, so bytes after a
	// body that decoded whole are ignored (a DMA's longer form).
	if d.Err() == nil && body.MessageCode().Class() == ExtClassNetAppRBE {
		return nil
	}
	// SET_EXT_LIST: NDMJOB-based DMAs send {error; class_list<>} instead of
	// the draft's class_version<>; accept it, taking each class's first
	// version.
	if p, ok := body.(*ConfigSetExtListRequest); ok {
		d2 := xdr.NewDecoder(b)
		_ = d2.Uint32() // error field, meaningless in a request
		var classes []ClassList
		if n := d2.ArrayLen(8); n > 0 {
			classes = make([]ClassList, n)
			for i := range classes {
				_ = classes[i].UnmarshalXDR(d2)
			}
		}
		if d2.Done() == nil {
			sel := make([]ClassVersion, 0, len(classes))
			for _, c := range classes {
				if len(c.ExtVersion) == 0 {
					return err
				}
				sel = append(sel, ClassVersion{ExtClassID: c.ExtClassID, ExtVersion: c.ExtVersion[0]})
			}
			p.NDMPSelectedExt = sel
			return nil
		}
	}
	// CAB prepare: DMAs send an extra word that the request models as
	// addr_type; accept the body without it too.
	if p, ok := body.(*CABDataConnPrepareRequest); ok {
		var alt struct {
			Butype string
			Env    []Pval
		}
		d2 := xdr.NewDecoder(b)
		alt.Butype = d2.StringValue()
		if n := d2.ArrayLen(8); n > 0 {
			alt.Env = make([]Pval, n)
			for i := range alt.Env {
				_ = alt.Env[i].UnmarshalXDR(d2)
			}
		}
		if d2.Done() == nil {
			*p = CABDataConnPrepareRequest{AddrType: AddrTCP, ButypeName: alt.Butype, Env: alt.Env}
			return nil
		}
	}
	return err
}
