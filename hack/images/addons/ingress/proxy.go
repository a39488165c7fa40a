package ingress

import (
	"context"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"

	"k8s.io/klog/v2"
)

type backendKey struct{}

// closeIdleBackendsEvery is how often idle backend connections are closed:
// rarely enough that a busy backend keeps its connections, often enough
// that a misrouted one (see NewProxy) is soon dialed again. It also stands
// in for an idle timeout, which could only be longer.
const closeIdleBackendsEvery = 5 * time.Second

// NewProxy returns the handler both ports serve: it looks the request up
// in the current table and proxies it to the backend found, or answers 404
// when no rule matches. The request keeps its Host header, and the backend
// sees X-Forwarded-For, -Host and -Proto, as with other controllers.
//
// Idle backend connections are closed every few seconds until ctx ends:
// a connection dialed to a ClusterIP before kube-proxy has programmed the
// new Service is not translated and leaves by the node's default route,
// and whatever answers there would otherwise keep serving that backend's
// requests for as long as the connection stays alive.
func NewProxy(ctx context.Context, table func() *Table) http.Handler {
	return newProxy(ctx, table, closeIdleBackendsEvery)
}

func newProxy(ctx context.Context, table func() *Table, closeIdleEvery time.Duration) http.Handler {
	transport := &http.Transport{
		Proxy:                 nil, // backends are in the cluster: never through an HTTP proxy
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   128,
		ExpectContinueTimeout: time.Second,
	}
	go func() {
		tick := time.NewTicker(closeIdleEvery)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				transport.CloseIdleConnections()
				return
			case <-tick.C:
				transport.CloseIdleConnections()
			}
		}
	}()
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(pr.In.Context().Value(backendKey{}).(*url.URL))
			pr.Out.Host = pr.In.Host
			pr.SetXForwarded()
		},
		Transport:     transport,
		FlushInterval: -1, // stream responses (server-sent events, long polls) as they come
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			klog.V(2).InfoS("Backend failed", "component", "ingress", "host", r.Host, "path", r.URL.Path, "err", err)
			http.Error(w, "bad gateway: the backend did not answer", http.StatusBadGateway)
		},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		backend, ok := table().Lookup(hostOnly(r.Host), r.URL.Path)
		if !ok {
			http.Error(w, "404 page not found: no ingress rule matches this host and path", http.StatusNotFound)
			return
		}
		rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), backendKey{}, backend)))
	})
}

// hostOnly strips the port from a Host header, brackets and all.
func hostOnly(hostport string) string {
	if host, _, err := net.SplitHostPort(hostport); err == nil {
		return host
	}
	return hostport
}
