// Package metrics exposes a Tapestry node's state to Prometheus.
//
// A Collector reads the running NDMP sessions, the tape devices and the
// volumes' snapshot copies each time it is scraped and turns them into
// metrics on its own registry (never the global default one):
//
//	c := metrics.New(metrics.Sources{Sessions: srv.Sessions, Tapes: reg, Storage: st})
//	http.Handle("GET /metrics", c.Handler())
//
// The metrics, all prefixed tapestry_:
//
//	ndmp_sessions{state}                      gauge: sessions by data state (idle, active, halted, ...)
//	ndmp_sessions_limit                       gauge: the session limit in force (N12)
//	ndmp_mover_sessions{state}                gauge: sessions by mover state
//	ndmp_data_bytes_total                     counter: bytes processed by DATA operations
//	ndmp_mover_bytes_total                    counter: bytes moved by the MOVER
//	ndmp_data_throughput_bytes_per_second     gauge: DATA bytes per second between the last two samples
//	ndmp_mover_throughput_bytes_per_second    gauge: MOVER bytes per second between the last two samples
//	tape_bytes_total{device,direction}        counter: bytes read and written by each drive
//	tape_records_total{device,direction}      counter: records read and written by each drive
//	tape_filemarks_written_total{device}      counter
//	tape_errors_total{device,kind}            counter: read, write and other errors
//	volume_snapshots{vserver,volume}          gauge: snapshot copies of each volume
//	volume_snapshots_locked{vserver,volume}   gauge: of which locked (owned)
//	scrape_errors_total{source}               counter: sources that failed to answer
//	fh_queue_depth                            gauge: file history posts queued for DMAs, all sessions
//	fh_stalls_total                           counter: times a backup waited on a full file history queue
//	mover_records_total                       counter: tape records written or read by the MOVER
//	ndmp_unauthenticated_connections          gauge: connections not authenticated yet
//	ndmp_connections_refused_total            counter: connections refused (service off, limits)
//	ndmp_unauthenticated_evicted_total        counter: idle unauthenticated connections closed for new ones
//	ndmp_auth_timeouts_total                  counter: connections closed for not authenticating in time
//	ndmp_auth_failures_total                  counter: failed authentications
//	ndmp_auth_lockouts_total                  counter: lockouts started (address, or user from an address)
//	ndmp_auth_locked_refusals_total           counter: authentications refused during a lockout
//
// The byte counters of the NDMP sessions add what every session moved
// between two samples, so they keep growing after sessions end. A session
// that starts and ends between two samples is not seen; calling Sample on a
// timer makes that window short.
package metrics

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tapestry-ndmp/tapestry/internal/server"
	"github.com/tapestry-ndmp/tapestry/internal/storage"
	"github.com/tapestry-ndmp/tapestry/internal/tape"
)

// Namespace prefixes every metric name.
const Namespace = "tapestry"

// ScrapeTimeout bounds the catalog reads of one scrape.
const ScrapeTimeout = 10 * time.Second

// Sources are what a Collector reads. Nil fields are skipped.
type Sources struct {
	// Sessions lists the running NDMP sessions (server.Server.Sessions).
	Sessions func() []server.SessionInfo
	// MaxSessions returns the session limit (server.Server.MaxSessions).
	MaxSessions func() int
	// Stats returns the server's counters (server.Server.Stats): file
	// history queue depth and stalls, mover records.
	Stats func() server.Stats
	// Tapes is the node's tape device registry.
	Tapes *tape.Registry
	// Storage gives the volumes and their snapshot copies.
	Storage *storage.Service
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Collector is a prometheus.Collector over Sources with its own registry.
// It is safe for concurrent use.
type Collector struct {
	src Sources
	reg *prometheus.Registry

	mu         sync.Mutex
	last       map[uint64]sessionSample
	lastAt     time.Time
	dataTotal  uint64
	moverTotal uint64
	dataRate   float64
	moverRate  float64
	scrapeErrs map[string]uint64

	sessions, sessionsLimit, moverSessions       *prometheus.Desc
	dataBytes, moverBytes, dataRateD, moverRateD *prometheus.Desc
	tapeBytes, tapeRecords, tapeMarks, tapeErrs  *prometheus.Desc
	snapshots, snapshotsLocked, scrapeErrors     *prometheus.Desc
	fhDepth, fhStalls, moverRecords              *prometheus.Desc
	unauth, refused, evicted, authTimeouts       *prometheus.Desc
	authFailures, authLockouts, authLocked       *prometheus.Desc
}

type sessionSample struct {
	data, mover uint64
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", name), help, labels, nil)
}

// New returns a Collector registered on a new registry together with the
// Go runtime and process collectors.
func New(src Sources) *Collector {
	if src.Now == nil {
		src.Now = time.Now
	}
	c := &Collector{
		src:        src,
		reg:        prometheus.NewRegistry(),
		last:       map[uint64]sessionSample{},
		scrapeErrs: map[string]uint64{},

		sessions:        desc("ndmp_sessions", "Running NDMP sessions by DATA state.", "state"),
		sessionsLimit:   desc("ndmp_sessions_limit", "Most NDMP sessions the node accepts."),
		moverSessions:   desc("ndmp_mover_sessions", "Running NDMP sessions by MOVER state.", "state"),
		dataBytes:       desc("ndmp_data_bytes_total", "Bytes processed by NDMP DATA operations (backup and restore)."),
		moverBytes:      desc("ndmp_mover_bytes_total", "Bytes moved by the NDMP MOVER."),
		dataRateD:       desc("ndmp_data_throughput_bytes_per_second", "NDMP DATA bytes per second between the last two samples."),
		moverRateD:      desc("ndmp_mover_throughput_bytes_per_second", "NDMP MOVER bytes per second between the last two samples."),
		tapeBytes:       desc("tape_bytes_total", "Bytes read from and written to a tape drive.", "device", "direction"),
		tapeRecords:     desc("tape_records_total", "Records read from and written to a tape drive.", "device", "direction"),
		tapeMarks:       desc("tape_filemarks_written_total", "File marks written by a tape drive.", "device"),
		tapeErrs:        desc("tape_errors_total", "Errors of a tape drive by kind (read, write, other).", "device", "kind"),
		snapshots:       desc("volume_snapshots", "Snapshot copies of a volume.", "vserver", "volume"),
		snapshotsLocked: desc("volume_snapshots_locked", "Snapshot copies of a volume that are locked by an owner.", "vserver", "volume"),
		scrapeErrors:    desc("scrape_errors_total", "Sources that failed to answer a scrape.", "source"),
		fhDepth:         desc("fh_queue_depth", "File history posts queued for the DMAs of all NDMP sessions."),
		fhStalls:        desc("fh_stalls_total", "Times a backup waited because its file history queue was full."),
		moverRecords:    desc("mover_records_total", "Tape records written or read by the NDMP MOVER."),
		unauth:          desc("ndmp_unauthenticated_connections", "NDMP connections that have not authenticated yet."),
		refused:         desc("ndmp_connections_refused_total", "NDMP connections refused with NOTIFY_CONNECTION_STATUS REFUSED."),
		evicted:         desc("ndmp_unauthenticated_evicted_total", "Unauthenticated NDMP connections closed to make room for new ones."),
		authTimeouts:    desc("ndmp_auth_timeouts_total", "NDMP connections closed for not authenticating in time."),
		authFailures:    desc("ndmp_auth_failures_total", "Failed NDMP authentications (CONNECT_CLIENT_AUTH)."),
		authLockouts:    desc("ndmp_auth_lockouts_total", "Lockouts of a source address or of a user from an address after failed NDMP authentications."),
		authLocked:      desc("ndmp_auth_locked_refusals_total", "NDMP authentications refused because of a lockout."),
	}
	c.reg.MustRegister(c, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return c
}

// Registry returns the collector's registry, for adding more collectors.
func (c *Collector) Registry() *prometheus.Registry { return c.reg }

// Handler returns the HTTP handler of the Prometheus text exposition.
func (c *Collector) Handler() http.Handler {
	return promhttp.HandlerFor(c.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Describe sends the descriptors of the collector's own metrics.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.sessions, c.sessionsLimit, c.moverSessions, c.dataBytes, c.moverBytes,
		c.dataRateD, c.moverRateD, c.tapeBytes, c.tapeRecords, c.tapeMarks, c.tapeErrs, c.snapshots,
		c.snapshotsLocked, c.scrapeErrors, c.fhDepth, c.fhStalls, c.moverRecords, c.unauth, c.refused, c.evicted,
		c.authTimeouts, c.authFailures, c.authLockouts, c.authLocked} {
		ch <- d
	}
}

// Sample reads the sessions' byte counts and updates the totals and rates.
// Collect calls it; the owner calls it on a timer as well (the daemon
// every second) so that short sessions count.
func (c *Collector) Sample() []server.SessionInfo {
	if c.src.Sessions == nil {
		return nil
	}
	ss := c.src.Sessions()
	now := c.src.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	var dd, dm uint64
	next := make(map[uint64]sessionSample, len(ss))
	for _, si := range ss {
		prev := c.last[si.ID]
		// Counters only grow; a smaller value means the counter was
		// reset (a new operation in the same session).
		dd += delta(prev.data, si.DataBytes)
		dm += delta(prev.mover, si.MoverBytes)
		next[si.ID] = sessionSample{data: si.DataBytes, mover: si.MoverBytes}
	}
	c.dataTotal += dd
	c.moverTotal += dm
	if !c.lastAt.IsZero() {
		if secs := now.Sub(c.lastAt).Seconds(); secs > 0 {
			c.dataRate, c.moverRate = float64(dd)/secs, float64(dm)/secs
		}
	}
	c.last, c.lastAt = next, now
	return ss
}

func delta(prev, cur uint64) uint64 {
	if cur >= prev {
		return cur - prev
	}
	return cur
}

// Collect sends the current metrics.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ss := c.Sample()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	if c.src.Sessions != nil {
		byData, byMover := map[string]int{}, map[string]int{}
		for _, si := range ss {
			byData[stateName(si.DataState)]++
			byMover[stateName(si.MoverState)]++
		}
		for st, n := range byData {
			gauge(c.sessions, float64(n), st)
		}
		for st, n := range byMover {
			gauge(c.moverSessions, float64(n), st)
		}
		c.mu.Lock()
		counter(c.dataBytes, float64(c.dataTotal))
		counter(c.moverBytes, float64(c.moverTotal))
		gauge(c.dataRateD, c.dataRate)
		gauge(c.moverRateD, c.moverRate)
		c.mu.Unlock()
	}
	if c.src.MaxSessions != nil {
		gauge(c.sessionsLimit, float64(c.src.MaxSessions()))
	}
	if c.src.Stats != nil {
		st := c.src.Stats()
		gauge(c.fhDepth, float64(st.FHQueueDepth))
		counter(c.fhStalls, float64(st.FHStalls))
		counter(c.moverRecords, float64(st.MoverRecords))
		gauge(c.unauth, float64(st.Unauthenticated))
		counter(c.refused, float64(st.Refused))
		counter(c.evicted, float64(st.Evicted))
		counter(c.authTimeouts, float64(st.AuthTimeouts))
		counter(c.authFailures, float64(st.AuthFailures))
		counter(c.authLockouts, float64(st.AuthLockouts))
		counter(c.authLocked, float64(st.AuthRefusedLocked))
	}
	ctx, cancel := context.WithTimeout(context.Background(), ScrapeTimeout)
	defer cancel()
	if c.src.Tapes != nil {
		if devs, err := c.src.Tapes.Devices(ctx); err != nil {
			c.scrapeError("tape")
		} else {
			for _, d := range devs {
				if d.Kind != tape.KindDrive {
					continue
				}
				name := deviceName(d)
				st := d.Stats
				counter(c.tapeBytes, float64(st.BytesRead), name, "read")
				counter(c.tapeBytes, float64(st.BytesWritten), name, "write")
				counter(c.tapeRecords, float64(st.RecordsRead), name, "read")
				counter(c.tapeRecords, float64(st.RecordsWritten), name, "write")
				counter(c.tapeMarks, float64(st.FilemarksWritten), name)
				counter(c.tapeErrs, float64(st.ReadErrors), name, "read")
				counter(c.tapeErrs, float64(st.WriteErrors), name, "write")
				counter(c.tapeErrs, float64(st.OtherErrors), name, "other")
			}
		}
	}
	if c.src.Storage != nil {
		if err := c.collectSnapshots(ctx, gauge); err != nil {
			c.scrapeError("storage")
		}
	}
	c.mu.Lock()
	for src, n := range c.scrapeErrs {
		counter(c.scrapeErrors, float64(n), src)
	}
	c.mu.Unlock()
}

func (c *Collector) collectSnapshots(ctx context.Context, gauge func(*prometheus.Desc, float64, ...string)) error {
	vols, err := c.src.Storage.ListVolumes(ctx, "")
	if err != nil {
		return err
	}
	for _, v := range vols {
		snaps, err := c.src.Storage.ListSnapshots(ctx, v.SVM, v.Name)
		if err != nil {
			return err
		}
		locked := 0
		for _, s := range snaps {
			if len(s.Owners) > 0 {
				locked++
			}
		}
		gauge(c.snapshots, float64(len(snaps)), v.SVM, v.Name)
		gauge(c.snapshotsLocked, float64(locked), v.SVM, v.Name)
	}
	return nil
}

func (c *Collector) scrapeError(src string) {
	c.mu.Lock()
	c.scrapeErrs[src]++
	c.mu.Unlock()
}

// stateName turns "NDMP_DATA_STATE_ACTIVE" or "ACTIVE" into "active".
func stateName(s string) string {
	if s == "" {
		return "unknown"
	}
	for _, p := range []string{"NDMP_DATA_STATE_", "NDMP_MOVER_STATE_", "NDMP4_DATA_STATE_", "NDMP4_MOVER_STATE_"} {
		if len(s) > len(p) && s[:len(p)] == p {
			s = s[len(p):]
			break
		}
	}
	b := []byte(s)
	for i, ch := range b {
		if ch >= 'A' && ch <= 'Z' {
			b[i] = ch + 'a' - 'A'
		}
	}
	return string(b)
}

// deviceName is the label of a drive: its alias, else its serial number,
// else its primary path.
func deviceName(d tape.Device) string {
	switch {
	case d.Alias != "":
		return d.Alias
	case d.Serial != "":
		return d.Serial
	case len(d.Paths) > 0:
		return d.Paths[0]
	}
	return "unknown"
}
