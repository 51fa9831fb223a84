package web

import (
	"context"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/tapestry-ndmp/tapestry/internal/auth"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Config is what the web view works on.
type Config struct {
	// API is the node's admin API (admin.NewServer); the pages read it in
	// process as the logged-in user.
	API http.Handler
	// Auth checks logins and tells which buttons a role may use.
	Auth *auth.Service
	// Node names the node in the page titles.
	Node string
	// Metrics, when not nil, is served at /metrics.
	Metrics http.Handler
	// MetricsNoAuth serves /metrics to anyone; otherwise a scrape needs
	// HTTP basic authentication (or a login) of a user whose role may
	// read "statistics show".
	MetricsNoAuth bool
	// Secure marks the session cookie Secure (the listener uses TLS).
	Secure bool
	// Logger receives logins and actions; nil discards.
	Logger *slog.Logger
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Handler is the web view as an http.Handler.
type Handler struct {
	cfg    Config
	mux    *http.ServeMux
	tmpl   *template.Template
	logins *logins
	rates  *rates
	log    *slog.Logger
}

// New returns the web view over cfg.
func New(cfg Config) (*Handler, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	t, err := template.New("").Funcs(funcs).ParseFS(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	h := &Handler{cfg: cfg, mux: http.NewServeMux(), tmpl: t, logins: newLogins(cfg.Now), rates: newRates(), log: cfg.Logger}
	h.routes()
	return h, nil
}

// ServeHTTP serves one request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
	w.Header().Set("Referrer-Policy", "same-origin")
	h.mux.ServeHTTP(w, r)
}

func (h *Handler) routes() {
	static, _ := fs.Sub(staticFS, "static")
	h.mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	h.mux.HandleFunc("GET /login", h.loginPage)
	h.mux.HandleFunc("POST /login", h.doLogin)
	h.mux.HandleFunc("POST /logout", h.doLogout)
	h.mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/sessions", http.StatusSeeOther)
	})
	h.page("GET /sessions", h.sessionsPage)
	h.page("GET /sessions/live", h.sessionsLive)
	h.action("POST /sessions/{id}/kill", h.killSession)
	h.page("GET /history", h.historyPage)
	h.page("GET /tapes", h.tapesPage)
	h.action("POST /tapes/{id}/{verb}", h.tapeAction)
	h.page("GET /snapshots", h.snapshotsPage)
	h.page("GET /events", h.eventsPage)
	if h.cfg.Metrics != nil {
		h.mux.HandleFunc("GET /metrics", h.metrics)
	}
}

// pageFunc serves a page for a logged-in user.
type pageFunc func(w http.ResponseWriter, r *http.Request, lg *login)

// current returns the login of a request's cookie.
func (h *Handler) current(r *http.Request) (*login, bool) {
	c, err := r.Cookie(CookieName)
	if err != nil {
		return nil, false
	}
	return h.logins.get(c.Value)
}

func (h *Handler) page(pattern string, fn pageFunc) {
	h.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		lg, ok := h.current(r)
		if !ok {
			if strings.HasSuffix(r.URL.Path, "/live") {
				http.Error(w, "login required", http.StatusUnauthorized)
				return
			}
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		fn(w, r, lg)
	})
}

// action serves a form that changes something: a login and the login's
// CSRF token are required.
func (h *Handler) action(pattern string, fn pageFunc) {
	h.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		lg, ok := h.current(r)
		if !ok {
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if !lg.validCSRF(r.PostFormValue("csrf")) {
			http.Error(w, "invalid form token: reload the page", http.StatusForbidden)
			return
		}
		fn(w, r, lg)
	})
}

// splitUser splits a login name: cluster users log in with their name, SVM
// users as SVM/name.
func (h *Handler) splitUser(user string) (string, string) {
	if svm, name, ok := strings.Cut(user, "/"); ok {
		return svm, name
	}
	return h.cfg.Auth.AdminSVM(), user
}

func (h *Handler) loginPage(w http.ResponseWriter, r *http.Request) {
	if _, ok := h.current(r); ok {
		http.Redirect(w, r, "/sessions", http.StatusSeeOther)
		return
	}
	h.render(w, "login", map[string]any{"Node": h.cfg.Node})
}

func (h *Handler) doLogin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	user := strings.TrimSpace(r.PostFormValue("user"))
	svm, name := h.splitUser(user)
	_, err := h.cfg.Auth.CheckPassword(r.Context(), svm, name, r.PostFormValue("password"))
	if err != nil {
		h.log.Warn("web login failed", "user", user, "remote", r.RemoteAddr, "err", err)
		msg := "Wrong user name or password."
		if errors.Is(err, auth.ErrLocked) {
			msg = auth.Message(err)
		}
		w.WriteHeader(http.StatusUnauthorized)
		h.render(w, "login", map[string]any{"Node": h.cfg.Node, "Error": msg, "User": user})
		return
	}
	id, _ := h.logins.add(svm, name)
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: id, Path: "/", HttpOnly: true, Secure: h.cfg.Secure,
		SameSite: http.SameSiteStrictMode, MaxAge: int(SessionLifetime.Seconds())})
	h.log.Info("web login", "user", user, "remote", r.RemoteAddr)
	http.Redirect(w, r, "/sessions", http.StatusSeeOther)
}

func (h *Handler) doLogout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(CookieName); err == nil {
		h.logins.remove(c.Value)
	}
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: h.cfg.Secure})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// metricsCmd is the command directory a scraping user needs read access
// to (the same as the admin socket's /metrics).
const metricsCmd = "statistics show"

func (h *Handler) metrics(w http.ResponseWriter, r *http.Request) {
	if !h.cfg.MetricsNoAuth {
		svm, name, ok := h.metricsUser(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Basic realm="tapestry metrics"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
		if err := h.cfg.Auth.Authorize(r.Context(), svm, name, metricsCmd, false); err != nil {
			http.Error(w, auth.Message(err), http.StatusForbidden)
			return
		}
	}
	h.cfg.Metrics.ServeHTTP(w, r)
}

// metricsUser authenticates a scrape: HTTP basic authentication (what
// Prometheus sends) or a login cookie.
func (h *Handler) metricsUser(r *http.Request) (string, string, bool) {
	if lg, ok := h.current(r); ok {
		return lg.svm, lg.name, true
	}
	user, pass, ok := r.BasicAuth()
	if !ok {
		return "", "", false
	}
	svm, name := h.splitUser(user)
	if _, err := h.cfg.Auth.CheckPassword(r.Context(), svm, name, pass); err != nil {
		h.log.Warn("metrics authentication failed", "user", user, "remote", r.RemoteAddr, "err", err)
		return "", "", false
	}
	return svm, name, true
}

// may reports whether the login's role allows running cmd (a write).
func (h *Handler) may(ctx context.Context, lg *login, cmd string) bool {
	return h.cfg.Auth.Authorize(ctx, lg.svm, lg.name, cmd, true) == nil
}

// render executes a template; a failure is logged (the answer has begun).
func (h *Handler) render(w http.ResponseWriter, name string, data any) {
	if w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
	}
	if err := h.tmpl.ExecuteTemplate(w, name, data); err != nil {
		h.log.Warn("web template", "template", name, "err", err)
	}
}
