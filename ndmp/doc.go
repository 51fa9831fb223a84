// Package ndmp implements version 4 of the Network Data Management Protocol
// (NDMP), the protocol a backup application (the DMA) uses to drive the
// data, tape and SCSI services of a backup server.
//
// The package has four layers:
//
//   - Message definitions. Every request, reply and post body of the NDMP v4
//     draft (draft-skardal-ndmpv4-04, Appendix C) and of the extensions
//     Tapestry supports is a Go struct with XDR encoding methods. They are
//     generated from ndmp.x, the single source of truth, by go generate.
//     Each body type reports its MessageCode; every enumeration, including
//     the error codes, has a String method naming its XDR constant.
//   - Messages and record marking. A Message is a Header and a Body.
//     MarshalMessage and UnmarshalMessage convert messages to and from the
//     bytes of one record; RecordReader and RecordWriter carry records over
//     a stream with RPC record marking (RFC 5531 section 11).
//   - Conn, a message connection over a net.Conn: it numbers outgoing
//     messages, matches replies to requests (several requests may be in
//     flight), and passes incoming requests and posts to a Handler.
//   - Client, the DMA side: it connects, negotiates the version, logs in with
//     TEXT or MD5 authentication and offers one method per request. It
//     delivers the notifications a DMA waits for as typed values
//     (DataHalted, MoverHalted, MoverPaused, LastLogMessage) as soon as the
//     connection reads them, so that a post the server sent before a reply
//     is there when the call that waited for the reply returns.
//
// A server refuses a request with a reply whose error field is set:
// NewErrorReply builds one for any message, and every reply body
// implements ErrorReply.
//
// NDMP error codes are values of type Error, which implements the error
// interface, so callers can test them with errors.Is:
//
//	if errors.Is(err, ndmp.ErrDeviceBusy) { ... }
//
// # Extensions
//
// Besides the core v4 messages the package defines:
//
//   - The test extension of the draft's Appendix B: class 0x7ff0, message
//     NDMP_TEST_ECHO = 0x7ff00000 (TestEcho), with the version 1 bodies
//     TestEchoRequest and TestEchoReply.
//   - NetApp Cluster Aware Backup (CAB), class 0x2052 version 1:
//     NDMP_CAB_DATA_CONN_PREPARE = 0x20520001 (CABDataConnPrepare).
//   - NetApp Connection Address Extension (CAE), class 0x2051 version 1: the
//     address type NDMP_ADDR_TCP_IPV6 = 0x20510004 (AddrTCPIPv6) whose Addr arm
//     is a list of TCPIPv6Addr.
//   - The class number of NetApp's restartable backup and snapshot
//     management extension, 0x2050 (ExtClassNetAppRBE). Its message numbers
//     and bodies are not public, so no messages of that class are defined.
package ndmp

//go:generate go run ./internal/xdrgen -in ndmp.x -out zmessages.go
