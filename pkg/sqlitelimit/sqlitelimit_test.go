package sqlitelimit

import (
	"math"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// apiserverLike is a registry with the API server's histogram, its labels
// and buckets.
type apiserverLike struct {
	reg  *prometheus.Registry
	hist *prometheus.HistogramVec
}

func newAPIServerLike() *apiserverLike {
	reg := prometheus.NewRegistry()
	hist := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: requestDuration,
		Buckets: []float64{0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 45, 60}},
		[]string{"verb", "resource", "subresource"})
	reg.MustRegister(hist)
	return &apiserverLike{reg: reg, hist: hist}
}

func (a *apiserverLike) calls(t *testing.T, verb, resource string, n int, took time.Duration) {
	t.Helper()
	for range n {
		a.hist.WithLabelValues(verb, resource, "").Observe(took.Seconds())
	}
}

func (a *apiserverLike) read(t *testing.T) map[string]buckets {
	t.Helper()
	families, err := a.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	return readBuckets(families)
}

func TestJudgeWarnsOnSustainedSlowCalls(t *testing.T) {
	cfg := New(Config{}).cfg
	a := newAPIServerLike()
	j := newJudge(cfg)
	now := time.Unix(0, 0)
	if j.add(now, a.read(t)) != nil {
		t.Fatal("warned on the first reading")
	}
	var warnings []time.Time
	for minute := 1; minute <= 70; minute++ {
		now = now.Add(time.Minute)
		a.calls(t, "POST", "configmaps", 200, 10*time.Millisecond)
		a.calls(t, "GET", "pods", 200, 5*time.Millisecond)
		if minute <= 55 {
			// Three calls in a hundred slower than the SLO: p99 over it.
			a.calls(t, "POST", "pods", 12, 3*time.Second)
		}
		if over := j.add(now, a.read(t)); over != nil {
			if over.class != "mutating" || over.p99 <= time.Second || over.slo != time.Second {
				t.Fatalf("minute %d: warned about %+v, want mutating over 1s", minute, *over)
			}
			warnings = append(warnings, now)
		}
	}
	// Over the SLO from minute 1; the third reading in a row warns, and
	// the next warning is an hour later at the earliest.
	if len(warnings) != 1 || warnings[0] != time.Unix(0, 0).Add(3*time.Minute) {
		t.Fatalf("warnings at %v, want one at minute 3", warnings)
	}
}

func TestJudgeQuietWithinSLOs(t *testing.T) {
	a := newAPIServerLike()
	j := newJudge(New(Config{}).cfg)
	now := time.Unix(0, 0)
	j.add(now, a.read(t))
	for minute := 1; minute <= 20; minute++ {
		now = now.Add(time.Minute)
		a.calls(t, "POST", "configmaps", 500, 40*time.Millisecond)
		// Lists are held to 30 s: 5 s lists are within it.
		a.calls(t, "LIST", "pods", 150, 5*time.Second)
		// A few slow calls with no more to judge them by are no limit.
		if minute == 1 {
			a.calls(t, "GET", "secrets", minCalls/2, 5*time.Second)
		}
		// Nor are slow non-resource calls (resource "").
		a.calls(t, "GET", "", 500, 5*time.Second)
		if over := j.add(now, a.read(t)); over != nil {
			t.Fatalf("minute %d: warned about %+v", minute, *over)
		}
	}
}

func TestJudgeForgetsOutsideWindow(t *testing.T) {
	a := newAPIServerLike()
	j := newJudge(New(Config{}).cfg)
	now := time.Unix(0, 0)
	j.add(now, a.read(t))
	// A burst of slow calls in the first minute, then fast ones: once the
	// burst has left the 5-minute window the streak is broken.
	a.calls(t, "PUT", "leases", 200, 2*time.Second)
	for minute := 1; minute <= 10; minute++ {
		now = now.Add(time.Minute)
		a.calls(t, "PUT", "leases", 200, time.Millisecond)
		over := j.add(now, a.read(t))
		if minute == 3 && over == nil {
			t.Fatal("no warning with the burst in the window for three readings")
		}
		if minute > 6 && j.worst() != nil {
			t.Fatalf("minute %d: still over the SLO after the burst left the window", minute)
		}
	}
}

func TestQuantileInterpolates(t *testing.T) {
	b := buckets{bounds: []float64{0.1, 1, 10, inf()}, counts: []float64{50, 90, 100, 100}}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 100 * time.Millisecond}, {0.25, 50 * time.Millisecond}, {0.9, time.Second}, {0.95, 5500 * time.Millisecond}} {
		if got := b.quantile(c.q); got != c.want {
			t.Errorf("quantile(%v) = %v, want %v", c.q, got, c.want)
		}
	}
	over := buckets{bounds: []float64{1, inf()}, counts: []float64{0, 10}}
	if got := over.quantile(0.99); got != time.Second {
		t.Errorf("quantile in +Inf = %v, want the largest finite bound 1s", got)
	}
}

func inf() float64 { return math.Inf(1) }
