package admin

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"strconv"

	"github.com/tapestry-ndmp/tapestry/internal/eventlog"
	"github.com/tapestry-ndmp/tapestry/internal/options"
	"github.com/tapestry-ndmp/tapestry/internal/storage"
)

// BackupLogOption is the option that turns the backup event log on and off
// (M2).
const BackupLogOption = options.BackupLog

// RDFile is the answer of GET /api/private/cli/rdfile: the contents of one
// backup event log file (M3).
type RDFile struct {
	// Path is the path as asked for; Name the log file it maps to.
	Path string `json:"path"`
	Name string `json:"name"`
	// Content is the file's text; with tail=N only its last N lines.
	Content string `json:"content"`
}

// eventLogRoutes registers the event log endpoints (M3).
func (s *Server) eventLogRoutes() {
	s.handle("GET /api/private/cli/rdfile", route{cmd: "system node run"}, s.rdfile)
	s.handle("GET /api/private/cli/eventlog/files", route{cmd: "system node run"}, s.eventLogFiles)
}

// logDir returns the event log directory, or an error if the node has no
// event log.
func (s *Server) logDir() (string, error) {
	if s.cfg.EventLog == nil {
		return "", &storage.Error{Kind: storage.ErrNotFound, Msg: fmt.Sprintf("the backup event log of node %s is not open", s.node())}
	}
	return s.cfg.EventLog.Dir(), nil
}

func (s *Server) rdfile(_ context.Context, r *request) (int, any, error) {
	if err := s.scope(r, s.cfg.Auth.AdminSVM()); err != nil {
		return 0, nil, err
	}
	q := r.URL.Query()
	if err := s.checkNode(q.Get("node")); err != nil {
		return 0, nil, err
	}
	path := q.Get("path")
	if path == "" {
		return 0, nil, badf("missing required parameter path (for example /etc/log/backup)")
	}
	name, err := eventlog.NameFromPath(path)
	if err != nil {
		return 0, nil, badf("rdfile: %s: %v", path, err)
	}
	dir, err := s.logDir()
	if err != nil {
		return 0, nil, err
	}
	out := RDFile{Path: path, Name: name}
	if t := q.Get("tail"); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil || n < 1 || n > 1_000_000 {
			return 0, nil, badf("invalid tail %q: must be a number of lines from 1 to 1000000", t)
		}
		lines, err := eventlog.Tail(dir, name, n)
		if err != nil {
			return 0, nil, rdfileErr(path, err)
		}
		for _, l := range lines {
			out.Content += l + "\n"
		}
		return http.StatusOK, out, nil
	}
	b, err := eventlog.Read(dir, name)
	if err != nil {
		return 0, nil, rdfileErr(path, err)
	}
	out.Content = string(b)
	return http.StatusOK, out, nil
}

func rdfileErr(path string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return &storage.Error{Kind: storage.ErrNotFound, Msg: fmt.Sprintf("rdfile: %s: no such file", path)}
	}
	return fmt.Errorf("rdfile %s: %w", path, err)
}

func (s *Server) eventLogFiles(_ context.Context, r *request) (int, any, error) {
	if err := s.scope(r, s.cfg.Auth.AdminSVM()); err != nil {
		return 0, nil, err
	}
	dir, err := s.logDir()
	if err != nil {
		return 0, nil, err
	}
	names, err := eventlog.Names(dir)
	if err != nil {
		return 0, nil, fmt.Errorf("list event log files: %w", err)
	}
	return http.StatusOK, records(names), nil
}

// applyOption puts backup.log.enable into effect at once: it turns the
// event log off (Stop_Logging) or on (Start_Logging). The other options'
// readers read them when they use them (package options).
func (s *Server) applyOption(o options.Option) error {
	if o.Name == BackupLogOption && s.cfg.EventLog != nil {
		if err := s.cfg.EventLog.SetEnabled(o.Value == "on"); err != nil {
			return fmt.Errorf("apply option %s: %w", o.Name, err)
		}
	}
	return nil
}
