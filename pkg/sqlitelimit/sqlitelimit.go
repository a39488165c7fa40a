package sqlitelimit

import (
	"context"
	"math"
	"slices"
	"time"

	dto "github.com/prometheus/client_model/go"
	"k8s.io/klog/v2"
)

// Gatherer reads a metrics registry (legacyregistry.DefaultGatherer is one).
type Gatherer interface {
	Gather() ([]*dto.MetricFamily, error)
}

// Config tunes the watch; zero values take the defaults.
type Config struct {
	// Gatherer holds the API server's metrics (legacyregistry's).
	Gatherer Gatherer
	// Every is how often the latency is read (1 min).
	Every time.Duration
	// Window is how far back each reading looks (5 min, as the SLOs do).
	Window time.Duration
	// Sustained is how many readings in a row must be over an SLO before
	// the warning (3).
	Sustained int
	// Repeat is how long the warning stays quiet once given (1 h).
	Repeat time.Duration
}

// minCalls is how many calls of a kind a window needs before its p99 is
// judged: a handful of slow calls on an idle server is not a limit.
const minCalls = 100

// requestDuration is the API server's latency histogram.
const requestDuration = "apiserver_request_duration_seconds"

// A class is a kind of API call and its SLO on p99.
type class struct {
	name  string
	verbs []string
	slo   time.Duration
}

var classes = []class{
	{"mutating", []string{"POST", "PUT", "PATCH", "DELETE"}, time.Second},
	{"get", []string{"GET"}, time.Second},
	{"list", []string{"LIST"}, 30 * time.Second},
}

// Watch is the component.
type Watch struct {
	cfg Config
}

// New returns the watch.
func New(cfg Config) *Watch {
	if cfg.Every == 0 {
		cfg.Every = time.Minute
	}
	if cfg.Window == 0 {
		cfg.Window = 5 * time.Minute
	}
	if cfg.Sustained == 0 {
		cfg.Sustained = 3
	}
	if cfg.Repeat == 0 {
		cfg.Repeat = time.Hour
	}
	return &Watch{cfg: cfg}
}

// Name implements component.Component.
func (w *Watch) Name() string { return "sqlite-limit" }

// Start implements component.Component.
func (w *Watch) Start(ctx context.Context) error {
	go w.run(ctx)
	return nil
}

// Stop implements component.Component; the watch ends with Start's context.
func (w *Watch) Stop(context.Context) error { return nil }

func (w *Watch) run(ctx context.Context) {
	logger := klog.FromContext(ctx).WithName("sqlite-limit")
	tick := time.NewTicker(w.cfg.Every)
	defer tick.Stop()
	j := newJudge(w.cfg)
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			families, err := w.cfg.Gatherer.Gather()
			if err != nil {
				logger.V(2).Info("Could not read the API server's metrics", "err", err)
				continue
			}
			if over := j.add(now, readBuckets(families)); over != nil {
				logger.Info("Warning: this server has outgrown SQLite: the API server's "+over.class+" calls have stayed slower than the upstream SLO; "+
					"move the cluster to embedded etcd by restarting this server with --cluster-init (it copies the SQLite data in and keeps the file as state.db.migrated), "+
					"then add servers for HA if needed",
					"p99", over.p99.Round(time.Millisecond).String(), "slo", over.slo.String(), "window", w.cfg.Window.String(), "calls", over.calls)
			}
		}
	}
}

// buckets are one class's cumulative histogram: counts per upper bound
// (+Inf last), summed over every resource.
type buckets struct {
	bounds []float64
	counts []float64
}

// readBuckets sums the API server's histogram per class, over resource
// requests only (health checks and the like are not held to the SLOs).
func readBuckets(families []*dto.MetricFamily) map[string]buckets {
	out := map[string]buckets{}
	for _, f := range families {
		if f.GetName() != requestDuration {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["resource"] == "" {
				continue
			}
			for _, c := range classes {
				if slices.Contains(c.verbs, labels["verb"]) {
					out[c.name] = addHistogram(out[c.name], m.GetHistogram())
				}
			}
		}
	}
	return out
}

func addHistogram(b buckets, h *dto.Histogram) buckets {
	if b.bounds == nil {
		for _, bk := range h.GetBucket() {
			b.bounds = append(b.bounds, bk.GetUpperBound())
		}
		b.bounds = append(b.bounds, math.Inf(1))
		b.counts = make([]float64, len(b.bounds))
	}
	for i, bk := range h.GetBucket() {
		if i < len(b.counts)-1 {
			b.counts[i] += float64(bk.GetCumulativeCount())
		}
	}
	b.counts[len(b.counts)-1] += float64(h.GetSampleCount())
	return b
}

// since is b less an earlier reading of the same histogram.
func (b buckets) since(old buckets) buckets {
	d := buckets{bounds: b.bounds, counts: slices.Clone(b.counts)}
	if len(old.counts) == len(d.counts) {
		for i := range d.counts {
			d.counts[i] -= old.counts[i]
		}
	}
	return d
}

func (b buckets) total() float64 {
	if len(b.counts) == 0 {
		return 0
	}
	return b.counts[len(b.counts)-1]
}

// quantile interpolates within the bucket the q-th call falls in, as
// Prometheus's histogram_quantile does; a quantile in the +Inf bucket is
// the largest finite bound.
func (b buckets) quantile(q float64) time.Duration {
	total := b.total()
	if total == 0 {
		return 0
	}
	rank := q * total
	lower, below := 0.0, 0.0
	for i, upper := range b.bounds {
		if b.counts[i] >= rank {
			if math.IsInf(upper, 1) {
				return seconds(lower)
			}
			in := b.counts[i] - below
			if in == 0 {
				return seconds(upper)
			}
			return seconds(lower + (upper-lower)*(rank-below)/in)
		}
		lower, below = upper, b.counts[i]
	}
	return seconds(lower)
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// overSLO is a class whose window's p99 was over its SLO.
type overSLO struct {
	class    string
	p99, slo time.Duration
	calls    int
}

// judge keeps the readings of one window and decides when to warn.
type judge struct {
	cfg      Config
	readings []reading
	streak   int
	warned   time.Time
}

type reading struct {
	at      time.Time
	classes map[string]buckets
}

func newJudge(cfg Config) *judge { return &judge{cfg: cfg} }

// add takes a reading at now and returns the class to warn about, if the
// latency has been over an SLO for cfg.Sustained readings in a row and no
// warning was given within cfg.Repeat.
func (j *judge) add(now time.Time, classes map[string]buckets) *overSLO {
	j.readings = append(j.readings, reading{now, classes})
	// The oldest reading kept is the window's start.
	for len(j.readings) > 2 && now.Sub(j.readings[1].at) >= j.cfg.Window {
		j.readings = j.readings[1:]
	}
	over := j.worst()
	if over == nil {
		j.streak = 0
		return nil
	}
	j.streak++
	if j.streak < j.cfg.Sustained || (!j.warned.IsZero() && now.Sub(j.warned) < j.cfg.Repeat) {
		return nil
	}
	j.warned = now
	return over
}

// worst is the class furthest over its SLO in the current window, if any.
func (j *judge) worst() *overSLO {
	if len(j.readings) < 2 {
		return nil
	}
	first, last := j.readings[0], j.readings[len(j.readings)-1]
	var worst *overSLO
	for _, c := range classes {
		window := last.classes[c.name].since(first.classes[c.name])
		if window.total() < minCalls {
			continue
		}
		p99 := window.quantile(0.99)
		if p99 <= c.slo {
			continue
		}
		if worst == nil || float64(p99)/float64(c.slo) > float64(worst.p99)/float64(worst.slo) {
			worst = &overSLO{class: c.name, p99: p99, slo: c.slo, calls: int(window.total())}
		}
	}
	return worst
}
