package web

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tapestry-ndmp/tapestry/internal/admin"
	"github.com/tapestry-ndmp/tapestry/internal/eventlog"
)

// HistoryLines is how many lines of the event log the history page reads.
const HistoryLines = 5000

// HistoryRows is how many operations the history page shows.
const HistoryRows = 100

// operation is one backup or restore put together from its event log
// lines.
type operation struct {
	Kind     string // backup or restore
	Path     string // the dump path or the restore destination
	ID       string // the dump's id; "" for a restore
	Started  time.Time
	Ended    time.Time
	Level    string
	Outcome  string // running, success, failed, aborted
	Amount   string // the End or Abort information
	Messages []string
}

// Duration is how long the operation took, "" while it runs.
func (o operation) Duration() string {
	if o.Ended.IsZero() || o.Started.IsZero() {
		return ""
	}
	return roundDuration(o.Ended.Sub(o.Started))
}

// operations groups event log lines into operations, newest first. A Start
// opens an operation of its identifier; End and Abort close the latest
// open one. An Error before End still makes the operation failed.
func operations(lines []string) []operation {
	var ops []operation
	open := map[string]int{}
	for _, line := range lines {
		e, err := eventlog.Parse(line)
		if err != nil || e.Type == eventlog.TypeLog {
			continue
		}
		key := string(e.Type) + " " + e.Identifier
		i, ok := open[key]
		if e.Event == eventlog.EventStart || !ok {
			ops = append(ops, newOperation(e))
			i = len(ops) - 1
			open[key] = i
		}
		o := &ops[i]
		switch e.Event {
		case eventlog.EventStart:
			o.Level = e.Info
		case eventlog.EventError:
			o.Messages = append(o.Messages, e.Info)
			o.Outcome = "failed"
		case eventlog.EventEnd, eventlog.EventAbort:
			o.Ended, o.Amount = e.Time, e.Info
			switch {
			case e.Event == eventlog.EventAbort:
				o.Outcome = "aborted"
			case o.Outcome != "failed":
				o.Outcome = "success"
			}
			delete(open, key)
		}
	}
	slices.Reverse(ops)
	return ops
}

func newOperation(e eventlog.Entry) operation {
	o := operation{Kind: "restore", Path: e.Identifier, Started: e.Time, Outcome: "running"}
	if e.Type == eventlog.TypeDump {
		o.Kind = "backup"
		if p, id, err := eventlog.SplitDumpIdentifier(e.Identifier); err == nil {
			o.Path, o.ID = strings.TrimSuffix(p, "/"), strconv.FormatUint(id, 10)
		}
	}
	if e.Event != eventlog.EventStart {
		// The Start line is in an older file.
		o.Started = time.Time{}
	}
	return o
}

// tail reads the last n lines of an event log file through the API.
func (h *Handler) tail(r *http.Request, lg *login, file string, n int) ([]string, error) {
	var rd admin.RDFile
	q := url.Values{"path": {"/etc/log/" + file}, "tail": {strconv.Itoa(n)}}
	if err := h.call(r.Context(), lg, http.MethodGet, "/api/private/cli/rdfile?"+q.Encode(), nil, &rd); err != nil {
		return nil, err
	}
	return eventlog.Lines([]byte(rd.Content)), nil
}

type historyData struct {
	Ops []operation
}

func (h *Handler) historyPage(w http.ResponseWriter, r *http.Request, lg *login) {
	pd := h.base(r, lg, "history", "Backups and restores")
	lines, err := h.tail(r, lg, eventlog.FileName, HistoryLines)
	if err != nil {
		pd.Errors = append(pd.Errors, err.Error())
	}
	ops := operations(lines)
	if len(ops) > HistoryRows {
		ops = ops[:HistoryRows]
	}
	pd.Data = historyData{Ops: ops}
	h.render(w, "history", pd)
}

// eventFilter is the query of the event log page.
type eventFilter struct {
	File, Type, Event, Text string
	Lines                   int
}

type eventsData struct {
	Filter  eventFilter
	Files   []string
	Types   []string
	Events  []string
	Entries []eventlog.Entry
	Other   []string // lines that do not parse
	Total   int
}

// EventLines is how many lines of a file the event log page reads by
// default, and MaxEventLines the most it reads.
const (
	EventLines    = 1000
	MaxEventLines = 100000
)

func (h *Handler) eventsPage(w http.ResponseWriter, r *http.Request, lg *login) {
	pd := h.base(r, lg, "events", "Event log")
	q := r.URL.Query()
	f := eventFilter{File: q.Get("file"), Type: q.Get("type"), Event: q.Get("event"), Text: q.Get("q"), Lines: EventLines}
	if f.File == "" {
		f.File = eventlog.FileName
	}
	if n, err := strconv.Atoi(q.Get("lines")); err == nil && n > 0 {
		f.Lines = min(n, MaxEventLines)
	}
	d := eventsData{Filter: f, Types: []string{"dmp", "rst", "log"}}
	for _, t := range []eventlog.Type{eventlog.TypeDump, eventlog.TypeLog} {
		for _, ev := range eventlog.Events(t) {
			d.Events = append(d.Events, string(ev))
		}
	}
	if files, err := list[string](r.Context(), h, lg, "/api/private/cli/eventlog/files"); err == nil {
		d.Files = files
	}
	lines, err := h.tail(r, lg, f.File, f.Lines)
	if err != nil {
		pd.Errors = append(pd.Errors, err.Error())
	}
	d.Total = len(lines)
	for i := len(lines) - 1; i >= 0; i-- {
		e, err := eventlog.Parse(lines[i])
		if err != nil {
			if f.Type == "" && f.Event == "" && strings.Contains(lines[i], f.Text) {
				d.Other = append(d.Other, lines[i])
			}
			continue
		}
		if f.match(e) {
			d.Entries = append(d.Entries, e)
		}
	}
	pd.Data = d
	h.render(w, "events", pd)
}

func (f eventFilter) match(e eventlog.Entry) bool {
	if f.Type != "" && string(e.Type) != f.Type {
		return false
	}
	if f.Event != "" && string(e.Event) != f.Event {
		return false
	}
	return f.Text == "" || strings.Contains(strings.ToLower(e.String()), strings.ToLower(f.Text))
}
