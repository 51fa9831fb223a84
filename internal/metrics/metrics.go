// Package metrics exposes a Tapestry node's state to Prometheus.
//
// A Collector reads the running NDMP sessions, the tape devices and the
// volumes' snapshot copies each time it is scraped and turns them into
// metrics on its own registry (never the global default one); the NDMP
// server's byte counters are counted where the bytes move (server.Stats),
// and the end of every backup and restore is observed as it happens
// (ObserveOperation, wired to server.Options.OnOperation), so a session
// however short counts:
//
//	c := metrics.New(metrics.Sources{Sessions: srv.Sessions, Stats: srv.Stats, Tapes: reg, Storage: st})
//	http.Handle("GET /metrics", c.Handler())
//
// The metrics, all prefixed tapestry_:
//
//	ndmp_sessions{state}                      gauge: sessions by data state (idle, active, halted, ...)
//	ndmp_sessions_limit                       gauge: the session limit in force (N12)
//	ndmp_mover_sessions{state}                gauge: sessions by mover state
//	ndmp_data_bytes_total                     counter: bytes of the DATA services' streams (backup and restore)
//	ndmp_mover_bytes_total                    counter: bytes moved by the MOVERs
//	ndmp_data_throughput_bytes_per_second     gauge: DATA bytes per second between the last two samples
//	ndmp_mover_throughput_bytes_per_second    gauge: MOVER bytes per second between the last two samples
//	ndmp_operations_total{operation,outcome}  counter: backups and restores ended, by outcome (success, failed, aborted)
//	ndmp_operation_duration_seconds{operation,outcome}  histogram: how long they took
//	ndmp_operation_bytes_total{operation}     counter: bytes of the data streams of ended operations
//	backup_last_success_timestamp_seconds{vserver,volume}  gauge: end of the last successful backup of a volume
//	backup_last_failure_timestamp_seconds{vserver,volume}  gauge: end of the last failed or aborted backup
//	tape_device_online{device,type}           gauge: 1 when a drive or changer is online, 0 when offline
//	tape_device_in_use{device,type}           gauge: 1 when an NDMP session has the device open
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
// docs/monitoring.md has a scrape configuration and alert rules.
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
	lastAt     time.Time
	lastData   uint64
	lastMover  uint64
	dataRate   float64
	moverRate  float64
	scrapeErrs map[string]uint64
	// lastOK mirrors lastSuccess, so that SetLastSuccess only moves it on.
	lastOK map[[2]string]float64

	ops         *prometheus.CounterVec
	opDuration  *prometheus.HistogramVec
	opBytes     *prometheus.CounterVec
	lastSuccess *prometheus.GaugeVec
	lastFailure *prometheus.GaugeVec

	sessions, sessionsLimit, moverSessions       *prometheus.Desc
	dataBytes, moverBytes, dataRateD, moverRateD *prometheus.Desc
	tapeBytes, tapeRecords, tapeMarks, tapeErrs  *prometheus.Desc
	tapeOnline, tapeInUse                        *prometheus.Desc
	snapshots, snapshotsLocked, scrapeErrors     *prometheus.Desc
	fhDepth, fhStalls, moverRecords              *prometheus.Desc
	unauth, refused, evicted, authTimeouts       *prometheus.Desc
	authFailures, authLockouts, authLocked       *prometheus.Desc
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", name), help, labels, nil)
}

// DurationBuckets are the upper bounds, in seconds, of the operation
// duration histogram: from a second to a day.
var DurationBuckets = []float64{1, 5, 15, 60, 300, 900, 1800, 3600, 2 * 3600, 4 * 3600, 8 * 3600, 24 * 3600}

// New returns a Collector registered on a new registry together with the
// Go runtime and process collectors.
func New(src Sources) *Collector {
	if src.Now == nil {
		src.Now = time.Now
	}
	c := &Collector{
		src:        src,
		reg:        prometheus.NewRegistry(),
		scrapeErrs: map[string]uint64{},
		lastOK:     map[[2]string]float64{},

		sessions:        desc("ndmp_sessions", "Running NDMP sessions by DATA state.", "state"),
		sessionsLimit:   desc("ndmp_sessions_limit", "Most NDMP sessions the node accepts."),
		moverSessions:   desc("ndmp_mover_sessions", "Running NDMP sessions by MOVER state.", "state"),
		dataBytes:       desc("ndmp_data_bytes_total", "Bytes of the NDMP DATA services' streams (backup and restore), counted as they move."),
		moverBytes:      desc("ndmp_mover_bytes_total", "Bytes moved by the NDMP MOVERs, counted as they move."),
		dataRateD:       desc("ndmp_data_throughput_bytes_per_second", "NDMP DATA bytes per second between the last two samples."),
		moverRateD:      desc("ndmp_mover_throughput_bytes_per_second", "NDMP MOVER bytes per second between the last two samples."),
		tapeBytes:       desc("tape_bytes_total", "Bytes read from and written to a tape drive.", "device", "direction"),
		tapeRecords:     desc("tape_records_total", "Records read from and written to a tape drive.", "device", "direction"),
		tapeMarks:       desc("tape_filemarks_written_total", "File marks written by a tape drive.", "device"),
		tapeErrs:        desc("tape_errors_total", "Errors of a tape drive by kind (read, write, other).", "device", "kind"),
		tapeOnline:      desc("tape_device_online", "1 when a tape drive or medium changer is online, 0 when it is offline.", "device", "type"),
		tapeInUse:       desc("tape_device_in_use", "1 when an NDMP session has the tape device open.", "device", "type"),
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
	c.newOperationMetrics()
	c.reg.MustRegister(c, c.ops, c.opDuration, c.opBytes, c.lastSuccess, c.lastFailure,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return c
}

func (c *Collector) newOperationMetrics() {
	name := func(n string) string { return prometheus.BuildFQName(Namespace, "", n) }
	c.ops = prometheus.NewCounterVec(prometheus.CounterOpts{Name: name("ndmp_operations_total"),
		Help: "NDMP backups and restores that ended, by outcome (success, failed, aborted)."}, []string{"operation", "outcome"})
	c.opDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name("ndmp_operation_duration_seconds"),
		Help: "How long NDMP backups and restores took, by outcome.", Buckets: DurationBuckets}, []string{"operation", "outcome"})
	c.opBytes = prometheus.NewCounterVec(prometheus.CounterOpts{Name: name("ndmp_operation_bytes_total"),
		Help: "Bytes of the data streams of NDMP backups and restores that ended."}, []string{"operation"})
	c.lastSuccess = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name("backup_last_success_timestamp_seconds"),
		Help: "When the last successful backup of a volume ended (Unix time)."}, []string{"vserver", "volume"})
	c.lastFailure = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name("backup_last_failure_timestamp_seconds"),
		Help: "When the last failed or aborted backup of a volume ended (Unix time)."}, []string{"vserver", "volume"})
	for _, op := range []string{"backup", "restore"} {
		c.opBytes.WithLabelValues(op)
		for _, oc := range []string{"success", "failed", "aborted"} {
			c.ops.WithLabelValues(op, oc)
		}
	}
}

// ObserveOperation counts a backup or restore that ended; the daemon
// passes it as server.Options.OnOperation.
func (c *Collector) ObserveOperation(op server.Operation) {
	outcome := op.Outcome()
	c.ops.WithLabelValues(op.Kind, outcome).Inc()
	c.opBytes.WithLabelValues(op.Kind).Add(float64(op.Bytes))
	if !op.Started.IsZero() {
		c.opDuration.WithLabelValues(op.Kind, outcome).Observe(op.Ended.Sub(op.Started).Seconds())
	}
	if op.Kind != "backup" {
		return
	}
	svm, vol, _, err := storage.SplitBackupPath(op.Path)
	if err != nil {
		return
	}
	if outcome == "success" {
		c.SetLastSuccess(svm, vol, op.Ended)
		return
	}
	c.lastFailure.WithLabelValues(svm, vol).Set(unixSeconds(op.Ended))
}

func unixSeconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

// SetLastSuccess sets the time of the last successful backup of a volume
// when it is later than the one known, as the daemon does on start from
// the backup event log.
func (c *Collector) SetLastSuccess(svm, volume string, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := [2]string{svm, volume}
	if v := unixSeconds(at); v > c.lastOK[k] {
		c.lastOK[k] = v
		c.lastSuccess.WithLabelValues(svm, volume).Set(v)
	}
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
		c.dataRateD, c.moverRateD, c.tapeBytes, c.tapeRecords, c.tapeMarks, c.tapeErrs, c.tapeOnline, c.tapeInUse,
		c.snapshots, c.snapshotsLocked, c.scrapeErrors, c.fhDepth, c.fhStalls, c.moverRecords, c.unauth, c.refused,
		c.evicted, c.authTimeouts, c.authFailures, c.authLockouts, c.authLocked} {
		ch <- d
	}
}

// Sample reads the server's byte counters and updates the throughput
// rates (the counters themselves are the server's, so nothing is lost
// between samples). Collect calls it; the daemon calls it every second as
// well, so that the rates are those of the last second.
func (c *Collector) Sample() (server.Stats, bool) {
	if c.src.Stats == nil {
		return server.Stats{}, false
	}
	st := c.src.Stats()
	now := c.src.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.lastAt.IsZero() {
		if secs := now.Sub(c.lastAt).Seconds(); secs > 0 {
			c.dataRate = float64(st.DataBytes-min(c.lastData, st.DataBytes)) / secs
			c.moverRate = float64(st.MoverBytes-min(c.lastMover, st.MoverBytes)) / secs
		}
	}
	c.lastAt, c.lastData, c.lastMover = now, st.DataBytes, st.MoverBytes
	return st, true
}

type emit func(d *prometheus.Desc, v float64, labels ...string)

// Collect sends the current metrics.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	c.collectSessions(gauge)
	if c.src.MaxSessions != nil {
		gauge(c.sessionsLimit, float64(c.src.MaxSessions()))
	}
	if st, ok := c.Sample(); ok {
		c.collectStats(st, gauge, counter)
	}
	ctx, cancel := context.WithTimeout(context.Background(), ScrapeTimeout)
	defer cancel()
	if c.src.Tapes != nil {
		if err := c.collectTapes(ctx, gauge, counter); err != nil {
			c.scrapeError("tape")
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

func (c *Collector) collectSessions(gauge emit) {
	if c.src.Sessions == nil {
		return
	}
	byData, byMover := map[string]int{}, map[string]int{}
	for _, si := range c.src.Sessions() {
		byData[stateName(si.DataState)]++
		byMover[stateName(si.MoverState)]++
	}
	for st, n := range byData {
		gauge(c.sessions, float64(n), st)
	}
	for st, n := range byMover {
		gauge(c.moverSessions, float64(n), st)
	}
}

func (c *Collector) collectStats(st server.Stats, gauge, counter emit) {
	counter(c.dataBytes, float64(st.DataBytes))
	counter(c.moverBytes, float64(st.MoverBytes))
	c.mu.Lock()
	gauge(c.dataRateD, c.dataRate)
	gauge(c.moverRateD, c.moverRate)
	c.mu.Unlock()
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

func (c *Collector) collectTapes(ctx context.Context, gauge, counter emit) error {
	devs, err := c.src.Tapes.Devices(ctx)
	if err != nil {
		return err
	}
	for _, d := range devs {
		name := deviceName(d)
		gauge(c.tapeOnline, b2f(d.Online), name, d.Kind.String())
		gauge(c.tapeInUse, b2f(d.OpenBy != ""), name, d.Kind.String())
		if d.Kind != tape.KindDrive {
			continue
		}
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
	return nil
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
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
