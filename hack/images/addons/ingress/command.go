package ingress

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"time"

	"golang.org/x/sync/errgroup"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
)

// Run is the ingress program: it parses args, then serves until ctx ends
// or a listener fails.
func Run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("ingress", flag.ContinueOnError)
	httpAddr := fs.String("http-addr", ":8080", "address of the HTTP port")
	httpsAddr := fs.String("https-addr", ":8443", "address of the HTTPS port")
	healthAddr := fs.String("health-addr", ":8081", "address of /healthz, ready once the first routing table is built")
	publish := fs.String("publish-service", "", "namespace/name of the Service whose load-balancer addresses go into the Ingresses' status")
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig to use instead of the pod's service account")
	klog.InitFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	config, err := clientConfig(*kubeconfig)
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(config)
	if err != nil {
		return fmt.Errorf("make the API client: %w", err)
	}
	defaultCert, err := SelfSigned(time.Now())
	if err != nil {
		return err
	}
	ctrl := NewController(ControllerConfig{Client: client, PublishService: *publish, DefaultCert: defaultCert})
	proxy := NewProxy(ctx, ctrl.Table)
	health := http.NewServeMux()
	health.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		if !ctrl.Synced() {
			http.Error(w, "routing table not built yet", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	servers := []struct {
		addr    string
		handler http.Handler
		tls     bool
	}{{*httpAddr, proxy, false}, {*httpsAddr, proxy, true}, {*healthAddr, health, false}}

	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return ctrl.Run(ctx) })
	for _, s := range servers {
		l, err := net.Listen("tcp", s.addr)
		if err != nil {
			return fmt.Errorf("listen on %s: %w", s.addr, err)
		}
		srv := &http.Server{Handler: s.handler, ReadHeaderTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}
		serve := func() error { return srv.Serve(l) }
		if s.tls {
			srv.TLSConfig = &tls.Config{GetCertificate: ctrl.Certificate, MinVersion: tls.VersionTLS12}
			serve = func() error { return srv.ServeTLS(l, "", "") }
		}
		klog.InfoS("Serving", "component", "ingress", "addr", s.addr, "tls", s.tls)
		g.Go(func() error {
			if err := serve(); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("serve %s: %w", s.addr, err)
			}
			return nil
		})
		g.Go(func() error {
			<-ctx.Done()
			// Requests in flight get the pod's grace period to finish.
			shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
			defer cancel()
			return srv.Shutdown(shutdown)
		})
	}
	return g.Wait()
}

func clientConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig != "" {
		config, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("load --kubeconfig %s: %w", kubeconfig, err)
		}
		return config, nil
	}
	config, err := rest.InClusterConfig()
	if err != nil {
		return nil, fmt.Errorf("load the pod's service account (run in a pod, or give --kubeconfig): %w", err)
	}
	return config, nil
}
