// Command addons is CoreDNS (github.com/coredns/coredns) and metrics-server
// (sigs.k8s.io/metrics-server), both linked, not modified, and regente's
// own ingress controller (package ingress), in one program that runs as
// the one its name says: the coredns, metrics-server and ingress system
// images (pkg/sysimages) share one layer holding it, /coredns,
// /metrics-server and /ingress being links to it. Their common libraries
// (client-go, gRPC, protobuf, Prometheus, the Go runtime) are then stored
// once in the payload and in containerd, compiled once per architecture,
// and their pages are shared in memory: 126 MB as two programs, 86 MB as
// one. Built by hack/payload.sh in this module of its own, so their
// dependencies never move regente's.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/coredns/coredns/coremain"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/component-base/logs"
	"k8s.io/klog/v2"
	"regente.io/regente/hack/images/addons/ingress"
	"sigs.k8s.io/metrics-server/cmd/metrics-server/app"

	// Each CoreDNS plugin registers itself. CoreDNS's own directive order
	// (core/dnsserver, generated from its plugin.cfg) stays in force; the
	// directives of plugins not linked here are unavailable to a Corefile.
	_ "github.com/coredns/coredns/core/dnsserver"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/forward"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/hosts"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/loop"
	_ "github.com/coredns/coredns/plugin/metrics"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/reload"
)

func main() {
	switch name := filepath.Base(os.Args[0]); name {
	case "coredns":
		coremain.Run()
	case "metrics-server":
		logs.InitLogs()
		err := app.NewMetricsServerCommand(genericapiserver.SetupSignalHandler()).Execute()
		logs.FlushLogs()
		if err != nil {
			os.Exit(1)
		}
	case "ingress":
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		err := ingress.Run(ctx, os.Args[1:])
		stop()
		klog.Flush()
		if err != nil {
			fmt.Fprintln(os.Stderr, "ingress:", err)
			os.Exit(1)
		}
	default:
		os.Stderr.WriteString("addons: run as coredns, metrics-server or ingress (by a link of that name), not as " + name + "\n")
		os.Exit(2)
	}
}
