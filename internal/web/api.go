package web

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/tapestry-ndmp/tapestry/internal/admin"
)

// recorder is the http.ResponseWriter of an in-process API call.
type recorder struct {
	h      http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.h }

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}

func (r *recorder) WriteHeader(s int) {
	if r.status == 0 {
		r.status = s
	}
}

// APIError is a refusal of the admin API, with its message.
type APIError struct {
	Status  int
	Message string
}

func (e *APIError) Error() string { return e.Message }

// call runs one admin API request as the logged-in user and decodes its
// JSON answer into out (when not nil).
func (h *Handler) call(ctx context.Context, lg *login, method, path string, in, out any) error {
	var body io.Reader = http.NoBody
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode %s %s: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(admin.WithPrincipal(ctx, lg.svm, lg.name), method, path, body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("Content-Type", "application/json")
	rec := &recorder{h: http.Header{}}
	h.cfg.API.ServeHTTP(rec, req)
	if rec.status >= 300 {
		var eb admin.ErrorBody
		if json.Unmarshal(rec.body.Bytes(), &eb) == nil && eb.Error.Message != "" {
			return &APIError{Status: rec.status, Message: eb.Error.Message}
		}
		return &APIError{Status: rec.status, Message: fmt.Sprintf("%s %s: HTTP %d", method, path, rec.status)}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(rec.body.Bytes(), out); err != nil {
		return fmt.Errorf("decode %s %s: %w", method, path, err)
	}
	return nil
}

// list reads a Records answer.
func list[T any](ctx context.Context, h *Handler, lg *login, path string) ([]T, error) {
	var r admin.Records[T]
	if err := h.call(ctx, lg, http.MethodGet, path, nil, &r); err != nil {
		return nil, err
	}
	return r.Records, nil
}
