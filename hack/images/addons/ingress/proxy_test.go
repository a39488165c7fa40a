package ingress

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestProxy(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "host=%s path=%s proto=%s", r.Host, r.URL.Path, r.Header.Get("X-Forwarded-Proto"))
	}))
	defer backend.Close()
	u, _ := url.Parse(backend.URL)
	table := &Table{exact: map[string][]route{"app.example.com": {{path: "/", backend: u}}}}
	dead := &Table{exact: map[string][]route{"app.example.com": {{path: "/", backend: &url.URL{Scheme: "http", Host: "127.0.0.1:1"}}}}}
	var current atomic.Pointer[Table]
	current.Store(table)
	front := httptest.NewServer(NewProxy(t.Context(), current.Load))
	defer front.Close()

	get := func(host, path string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, front.URL+path, nil)
		req.Host = host
		resp, err := front.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, body := get("app.example.com:80", "/x/y"); code != 200 || body != "host=app.example.com:80 path=/x/y proto=http" {
		t.Errorf("routed request: %d %q", code, body)
	}
	if code, body := get("other.example.com", "/"); code != 404 || !strings.Contains(body, "no ingress rule") {
		t.Errorf("unrouted request: %d %q, want 404", code, body)
	}
	current.Store(dead)
	if code, _ := get("app.example.com", "/"); code != http.StatusBadGateway {
		t.Errorf("dead backend: %d, want 502", code)
	}
}

// A kept-alive backend connection is not reused forever: one dialed before
// kube-proxy knew the Service went elsewhere, and only a new one is
// translated to the Service's pods.
func TestProxyRedialsIdleBackends(t *testing.T) {
	var dials atomic.Int32
	backend := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, "ok")
	}))
	backend.Config.ConnState = func(_ net.Conn, state http.ConnState) {
		if state == http.StateNew {
			dials.Add(1)
		}
	}
	backend.Start()
	defer backend.Close()
	u, _ := url.Parse(backend.URL)
	table := &Table{exact: map[string][]route{"app.example.com": {{path: "/", backend: u}}}}
	front := httptest.NewServer(newProxy(t.Context(), func() *Table { return table }, 50*time.Millisecond))
	defer front.Close()
	get := func() {
		req, _ := http.NewRequest(http.MethodGet, front.URL, nil)
		req.Host = "app.example.com"
		resp, err := front.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	get()
	get()
	if n := dials.Load(); n != 1 {
		t.Fatalf("two requests in a row dialed the backend %d times, want 1 (kept alive)", n)
	}
	time.Sleep(300 * time.Millisecond)
	get()
	if n := dials.Load(); n != 2 {
		t.Errorf("a request after the idle connection's close dialed %d times in all, want 2", n)
	}
}
