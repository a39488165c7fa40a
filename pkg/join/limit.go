package join

import (
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
	"k8s.io/klog/v2"
)

// Guessing a token through the join endpoints is slowed per client
// address: refusedBurst refused tokens at once, then one more every
// refusedEvery. A client past that gets 429 until its allowance refills,
// whatever its token, so a correct guess cannot slip in between.
const (
	refusedBurst = 10
	refusedEvery = 6 * time.Second
	// maxTracked bounds the addresses remembered; past it, those whose
	// allowance is whole again are forgotten.
	maxTracked = 4096
)

// refusals counts refused tokens per client address.
type refusals struct {
	mu     sync.Mutex
	byAddr map[string]*rate.Limiter
	now    func() time.Time
}

func newRefusals() *refusals {
	return &refusals{byAddr: map[string]*rate.Limiter{}, now: time.Now}
}

// wait is how long addr must wait before its next try, 0 if it may try.
func (r *refusals) wait(addr string) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	l, ok := r.byAddr[addr]
	if !ok {
		return 0
	}
	tokens := l.TokensAt(r.now())
	if tokens >= 1 {
		return 0
	}
	return time.Duration(math.Ceil((1 - tokens) * float64(refusedEvery)))
}

// refused counts a refused token from addr and reports whether that used
// up its allowance.
func (r *refusals) refused(addr string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	l, ok := r.byAddr[addr]
	if !ok {
		if len(r.byAddr) >= maxTracked {
			for a, other := range r.byAddr {
				if other.TokensAt(now) >= refusedBurst {
					delete(r.byAddr, a)
				}
			}
		}
		l = rate.NewLimiter(rate.Every(refusedEvery), refusedBurst)
		r.byAddr[addr] = l
	}
	l.AllowN(now, 1)
	return l.TokensAt(now) < 1
}

// statusRecorder remembers the status a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (w *statusRecorder) WriteHeader(status int) {
	w.status = status
	w.ResponseWriter.WriteHeader(status)
}

// limitRefusals wraps a handler that checks tokens: a client address whose
// allowance of refused tokens is used up gets 429 with Retry-After (and no
// RefusedHeader, so that a node behind the same address retries rather than
// gives up), and every 401 the handler answers counts against it.
func (s *Server) limitRefusals(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		addr, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			addr = r.RemoteAddr
		}
		if d := s.refusals.wait(addr); d > 0 {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(d.Seconds()))))
			w.WriteHeader(http.StatusTooManyRequests)
			_ = json.NewEncoder(w).Encode(Error{Message: fmt.Sprintf("too many refused tokens from %s: try again in %s, with the token in <data-dir>/server/token on a server", addr, d.Round(time.Second))})
			return
		}
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(rec, r)
		if rec.status == http.StatusUnauthorized && s.refusals.refused(addr) {
			klog.FromContext(r.Context()).Info("Too many refused tokens from one address; refusing its joins for a while",
				"component", "join", "remote", addr, "allowance", fmt.Sprintf("%d, then one every %s", refusedBurst, refusedEvery))
		}
	})
}
