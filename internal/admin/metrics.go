package admin

import (
	"errors"
	"net/http"

	"github.com/tapestry-ndmp/tapestry/internal/auth"
)

// MetricsPath is where the Prometheus metrics are served.
const MetricsPath = "/metrics"

// metricsCmd is the command directory a user needs read access to for
// the metrics.
const metricsCmd = "statistics show"

// metricsRoute serves ServerConfig.Metrics at GET /metrics in the
// Prometheus text format. Like every endpoint it needs HTTP basic
// authentication; the user's role must allow reading "statistics show".
func (s *Server) metricsRoute() {
	if s.cfg.Metrics == nil {
		return
	}
	s.mux.HandleFunc("GET "+MetricsPath, func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		if !ok {
			w.Header().Set("WWW-Authenticate", `Basic realm="tapestry"`)
			writeError(w, http.StatusUnauthorized, "authentication-failed", "authentication required")
			return
		}
		svm, name := splitUser(s.cfg.Auth.AdminSVM(), user)
		if err := s.login(r.Context(), svm, name, pass); err != nil {
			w.Header().Set("WWW-Authenticate", `Basic realm="tapestry"`)
			status, code, msg := http.StatusUnauthorized, "authentication-failed", "authentication failed: wrong user name or password"
			if errors.Is(err, auth.ErrLocked) {
				status, code, msg = http.StatusForbidden, "locked", auth.Message(err)
			}
			writeError(w, status, code, msg)
			return
		}
		if err := s.cfg.Auth.Authorize(r.Context(), svm, name, metricsCmd, false); err != nil {
			status, code, msg := classify(err)
			writeError(w, status, code, msg)
			return
		}
		s.cfg.Metrics.ServeHTTP(w, r)
	})
}

// splitUser splits a login name: cluster users log in with their name, SVM
// users as SVM/name.
func splitUser(adminSVM, user string) (svm, name string) {
	for i := 0; i < len(user); i++ {
		if user[i] == '/' {
			return user[:i], user[i+1:]
		}
	}
	return adminSVM, user
}
