package admin

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestByNameKeepsMatchesAndNeverNil(t *testing.T) {
	type rec struct{ Name string }
	all := []rec{{"a"}, {"b"}, {"a"}}
	name := func(r rec) string { return r.Name }
	if got := byName(all, "a", name); len(got) != 2 || got[0].Name != "a" || got[1].Name != "a" {
		t.Fatalf("byName a = %v, want two a records", got)
	}
	if got := byName(all, "", name); len(got) != 3 {
		t.Fatalf("byName with no name = %v, want all three", got)
	}
	got := byName(all, "zz", name)
	b, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != "[]" {
		t.Fatalf("no match encodes as %s, want [] (list answers must not be null)", b)
	}
}

func TestReply(t *testing.T) {
	boom := errors.New("boom")
	if st, v, err := reply(http.StatusCreated, "x", nil); st != http.StatusCreated || v != "x" || err != nil {
		t.Fatalf("reply ok = %d %v %v", st, v, err)
	}
	if st, v, err := reply(http.StatusCreated, "x", boom); st != 0 || v != nil || err != boom {
		t.Fatalf("reply error = %d %v %v, want 0 nil boom", st, v, err)
	}
}

func TestWithBodyDecodesOrRefuses(t *testing.T) {
	called := 0
	h := withBody(func(_ context.Context, _ *request, in OptionSet) (int, any, error) {
		called++
		return http.StatusOK, in.Name + "=" + in.Value, nil
	})
	for _, tc := range []struct {
		body, wantErr, want string
	}{
		{`{"option-name":"tape.reservations","option-value":"scsi"}`, "", "tape.reservations=scsi"},
		{``, "request body is empty", ""},
		{`{"nosuch":1}`, "invalid request body", ""},
		{`{} {}`, "trailing data", ""},
	} {
		before := called
		hr := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(tc.body))
		st, v, err := h(context.Background(), &request{Request: hr})
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || called != before {
				t.Errorf("body %q: err %v, handler ran %d times; want %q and no call", tc.body, err, called-before, tc.wantErr)
			}
			continue
		}
		if err != nil || st != http.StatusOK || v != tc.want {
			t.Errorf("body %q: %d %v %v, want 200 %q", tc.body, st, v, err, tc.want)
		}
	}
}
