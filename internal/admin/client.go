package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"
)

// Client calls the admin API over a unix socket. It is safe for concurrent
// use.
type Client struct {
	http      *http.Client
	socket    string
	user      string
	password  string
	privilege string
}

// APIError is an error answer of the API.
type APIError struct {
	Status  int
	Code    string
	Message string
}

// Error returns the message, which reads well after "Error: ".
func (e *APIError) Error() string { return e.Message }

// NewClient returns a client for the daemon listening on socket that
// authenticates as user with password.
func NewClient(socket, user, password string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
		MaxIdleConns:    4,
		IdleConnTimeout: 30 * time.Second,
	}
	return &Client{http: &http.Client{Transport: tr}, socket: socket, user: user, password: password}
}

// SetPrivilege sets the privilege level (PrivAdmin or PrivAdvanced) sent
// with every request.
func (c *Client) SetPrivilege(p string) { c.privilege = p }

// Close releases idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// Do sends one request. query may be nil; in, when not nil, is sent as the
// JSON body; out, when not nil, receives the decoded answer.
func (c *Client) Do(ctx context.Context, method, path string, query url.Values, in, out any) error {
	u := "http://tapestry" + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.SetBasicAuth(c.user, c.password)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.privilege != "" {
		req.Header.Set(PrivilegeHeader, c.privilege)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) {
			return fmt.Errorf("cannot reach tapestryd at %s: %w (is the daemon running? set --socket or TAPESTRY_SOCKET)", c.socket, op.Err)
		}
		return fmt.Errorf("cannot reach tapestryd at %s: %w", c.socket, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		var eb ErrorBody
		if json.Unmarshal(data, &eb) == nil && eb.Error.Message != "" {
			return &APIError{Status: resp.StatusCode, Code: eb.Error.Code, Message: eb.Error.Message}
		}
		return &APIError{Status: resp.StatusCode, Code: "http", Message: fmt.Sprintf("HTTP %s", resp.Status)}
	}
	if out != nil {
		if raw, ok := out.(*json.RawMessage); ok {
			*raw = append((*raw)[:0], data...)
			return nil
		}
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("decode answer of %s %s: %w", method, path, err)
		}
	}
	return nil
}

// List fetches a list endpoint and returns its records.
func List[T any](ctx context.Context, c *Client, path string, query url.Values) ([]T, error) {
	var r Records[T]
	if err := c.Do(ctx, http.MethodGet, path, query, nil, &r); err != nil {
		return nil, err
	}
	return r.Records, nil
}

// Volume returns the volume vol of svm, or a not-found APIError.
func (c *Client) Volume(ctx context.Context, svm, vol string) (Volume, error) {
	vs, err := List[Volume](ctx, c, "/api/storage/volumes", url.Values{"svm.name": {svm}, "name": {vol}})
	if err != nil {
		return Volume{}, err
	}
	if len(vs) == 0 {
		return Volume{}, &APIError{Status: http.StatusNotFound, Code: "not-found",
			Message: fmt.Sprintf("command failed: volume %q in Vserver %q does not exist", vol, svm)}
	}
	return vs[0], nil
}
