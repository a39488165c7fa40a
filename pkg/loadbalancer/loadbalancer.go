package loadbalancer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"regente.io/regente/pkg/atomicfile"
	"regente.io/regente/pkg/component"
	"regente.io/regente/pkg/kubeconfig"
)

// dialTimeout bounds how long a dead server holds up a new connection
// before the next one is tried.
const dialTimeout = 3 * time.Second

// Config configures the load balancer.
type Config struct {
	// Listen is the local address, e.g. 127.0.0.1:6444.
	Listen string
	// Servers are the servers' https URLs known at start; the first is
	// the one the agent was pointed at and is never forgotten.
	Servers []string
	// Kubeconfig, once it exists, is used to watch the servers' list; it
	// must point at this load balancer.
	Kubeconfig func() string
	// StateFile keeps the servers the watch learned, so that after a
	// restart the node reaches them even when Servers[0] is down.
	StateFile string
}

// state is StateFile's content.
type state struct {
	Servers []string `json:"servers"` // host:port
}

// Remembered returns the servers (host:port) stateFile holds; none when
// it is missing or unreadable, as on a node's first start.
func Remembered(stateFile string) []string {
	b, err := os.ReadFile(stateFile)
	if err != nil {
		return nil
	}
	var s state
	if json.Unmarshal(b, &s) != nil {
		return nil
	}
	return s.Servers
}

// remember writes servers to the state file.
func (l *LoadBalancer) remember(servers []string) error {
	if l.cfg.StateFile == "" {
		return nil
	}
	b, err := json.Marshal(state{Servers: servers})
	if err != nil {
		return err
	}
	if err := atomicfile.Write(atomicfile.File{Path: l.cfg.StateFile, Data: append(b, '\n'), Mode: 0o600}); err != nil {
		return fmt.Errorf("remember the API servers in %s: %w", l.cfg.StateFile, err)
	}
	return nil
}

// LoadBalancer is the component.
type LoadBalancer struct {
	component.Runner
	cfg      Config
	listener net.Listener

	mu        sync.Mutex
	servers   []string // host:port
	preferred string
}

var (
	_ component.Component = (*LoadBalancer)(nil)
	_ component.Failer    = (*LoadBalancer)(nil)
)

// New returns the component.
func New(cfg Config) *LoadBalancer { return &LoadBalancer{cfg: cfg} }

// Name implements component.Component.
func (l *LoadBalancer) Name() string { return "loadbalancer" }

// URL is the https URL the node's components use.
func (l *LoadBalancer) URL() string { return "https://" + l.cfg.Listen }

var _ component.Initer = (*LoadBalancer)(nil)

// Init checks the server URLs.
func (l *LoadBalancer) Init(context.Context) error {
	hosts, err := hostPorts(l.cfg.Servers)
	if err != nil {
		return err
	}
	for _, h := range append(hosts, Remembered(l.cfg.StateFile)...) {
		if !slices.Contains(l.servers, h) {
			l.servers = append(l.servers, h)
		}
	}
	return nil
}

// hostPorts turns https URLs into host:port, port 443 by default.
func hostPorts(urls []string) ([]string, error) {
	var out []string
	for _, s := range urls {
		u, err := url.Parse(s)
		if err != nil || u.Scheme != "https" || u.Hostname() == "" {
			return nil, fmt.Errorf("server %q is not an https URL", s)
		}
		port := u.Port()
		if port == "" {
			port = "443"
		}
		out = append(out, net.JoinHostPort(u.Hostname(), port))
	}
	return out, nil
}

// Start listens and proxies until Stop.
func (l *LoadBalancer) Start(ctx context.Context) error {
	ln, err := net.Listen("tcp", l.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s for the API server load balancer (another node on this host? set --lb-server-port): %w", l.cfg.Listen, err)
	}
	l.listener = ln
	logger := klog.FromContext(ctx).WithValues("component", "loadbalancer")
	logger.Info("API server load balancer listening", "address", l.cfg.Listen, "servers", l.Servers())
	return l.Runner.Start(klog.NewContext(ctx, logger), func(ctx context.Context) (func() error, error) {
		return func() error {
			go func() {
				<-ctx.Done()
				ln.Close()
			}()
			go l.watchServers(ctx)
			for {
				conn, err := ln.Accept()
				if err != nil {
					if ctx.Err() != nil {
						return nil
					}
					return fmt.Errorf("accept: %w", err)
				}
				go l.proxy(ctx, conn)
			}
		}, nil
	})
}

// Servers returns the current server list.
func (l *LoadBalancer) Servers() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.servers)
}

// SetServers replaces the known servers; the configured first server is
// kept as a last resort, so the node can always find its way back.
func (l *LoadBalancer) SetServers(hostPorts []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	first, _ := firstOf(l.cfg.Servers)
	list := slices.Clone(hostPorts)
	slices.Sort(list)
	list = slices.Compact(list)
	if first != "" && !slices.Contains(list, first) {
		list = append(list, first)
	}
	l.servers = list
}

func firstOf(urls []string) (string, bool) {
	hosts, err := hostPorts(urls)
	if err != nil || len(hosts) == 0 {
		return "", false
	}
	return hosts[0], true
}

// order returns the servers to try: the preferred one first.
func (l *LoadBalancer) order() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]string, 0, len(l.servers))
	if slices.Contains(l.servers, l.preferred) {
		out = append(out, l.preferred)
	}
	for _, s := range l.servers {
		if s != l.preferred {
			out = append(out, s)
		}
	}
	return out
}

func (l *LoadBalancer) proxy(ctx context.Context, client net.Conn) {
	defer client.Close()
	logger := klog.FromContext(ctx)
	var upstream net.Conn
	var errs []error
	for _, server := range l.order() {
		d := net.Dialer{Timeout: dialTimeout}
		conn, err := d.DialContext(ctx, "tcp", server)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		upstream = conn
		l.mu.Lock()
		if l.preferred != server {
			if l.preferred != "" {
				logger.Info("API server load balancer switched server", "from", l.preferred, "to", server)
			}
			l.preferred = server
		}
		l.mu.Unlock()
		break
	}
	if upstream == nil {
		logger.Error(errors.Join(errs...), "No API server reachable", "servers", l.Servers())
		return
	}
	defer upstream.Close()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(upstream, client)
	go pipe(client, upstream)
	select {
	case <-done:
		<-done
	case <-ctx.Done():
	}
}

// watchServers keeps the server list equal to the kubernetes Service's
// endpoints once the node's credentials exist.
func (l *LoadBalancer) watchServers(ctx context.Context) {
	logger := klog.FromContext(ctx)
	var path string
	for path == "" {
		if path = l.cfg.Kubeconfig(); path != "" {
			break
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
	_, client, err := kubeconfig.Client(path)
	if err != nil {
		logger.Error(err, "Cannot watch the API servers; keeping the configured ones")
		return
	}
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(metav1.NamespaceDefault),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = discoveryv1.LabelServiceName + "=kubernetes" }))
	slicesInformer := factory.Discovery().V1().EndpointSlices()
	update := func(any) {
		list, err := slicesInformer.Lister().List(labels.Everything())
		if err != nil {
			return
		}
		var hosts []string
		for _, slice := range list {
			for _, port := range slice.Ports {
				if port.Port == nil || (port.Name != nil && *port.Name != "https") {
					continue
				}
				for _, ep := range slice.Endpoints {
					if ep.Conditions.Ready != nil && !*ep.Conditions.Ready {
						continue
					}
					for _, addr := range ep.Addresses {
						hosts = append(hosts, net.JoinHostPort(addr, strconv.Itoa(int(*port.Port))))
					}
				}
			}
		}
		if len(hosts) == 0 {
			return
		}
		before := l.Servers()
		l.SetServers(hosts)
		if after := l.Servers(); !slices.Equal(before, after) {
			logger.Info("API servers changed", "servers", after)
			if err := l.remember(after); err != nil {
				logger.Error(err, "The next start knows only the configured server")
			}
		}
	}
	if _, err := slicesInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: update, UpdateFunc: func(_, o any) { update(o) }, DeleteFunc: update,
	}); err != nil {
		logger.Error(err, "Cannot watch the API servers; keeping the configured ones")
		return
	}
	factory.Start(ctx.Done())
	<-ctx.Done()
	factory.Shutdown()
}
