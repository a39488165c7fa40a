package join

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes/fake"
)

func TestRefusedTokensAreRateLimited(t *testing.T) {
	now := time.Now()
	s := NewServer(ServerConfig{Tokens: loadedTokens(t, "srv-secret", "")})
	s.client = fake.NewClientset()
	s.once.Do(func() {})
	s.refusals.now = func() time.Time { return now }
	join := s.Handlers()[PathJoin]
	post := func(addr, token string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodPost, PathJoin, strings.NewReader(`{"token":"`+token+`","nodeName":"n1"}`))
		r.RemoteAddr = addr
		w := httptest.NewRecorder()
		join.ServeHTTP(w, r)
		return w
	}
	for i := range refusedBurst {
		if w := post("192.0.2.1:1000", "server:guess"); w.Code != http.StatusUnauthorized {
			t.Fatalf("guess %d: status %d, want 401", i, w.Code)
		}
	}
	// Past the allowance even the right token waits, and the client is
	// told to retry, not that it was refused.
	w := post("192.0.2.1:1001", "server:srv-secret")
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "6" || w.Header().Get(RefusedHeader) != "" ||
		!strings.Contains(w.Body.String(), "too many refused tokens from 192.0.2.1") {
		t.Fatalf("after %d guesses: status %d, headers %v, body %s", refusedBurst, w.Code, w.Header(), w.Body)
	}
	if w := post("192.0.2.2:1000", "server:guess"); w.Code != http.StatusUnauthorized {
		t.Errorf("another address: status %d, want 401", w.Code)
	}
	now = now.Add(refusedEvery)
	if w := post("192.0.2.1:1002", "server:guess"); w.Code != http.StatusUnauthorized {
		t.Errorf("after %s: status %d, want 401", refusedEvery, w.Code)
	}
	if w := post("192.0.2.1:1003", "server:guess"); w.Code != http.StatusTooManyRequests {
		t.Errorf("the refilled try is used up: status %d, want 429", w.Code)
	}
}
