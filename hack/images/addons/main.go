// Command addons is CoreDNS (github.com/coredns/coredns) and metrics-server
// (sigs.k8s.io/metrics-server), both linked, not modified, in one program
// that runs as the one its name says: the coredns and metrics-server
// system images (pkg/sysimages) share one layer holding it, /coredns and
// /metrics-server being links to it. Their common libraries (client-go,
// gRPC, protobuf, Prometheus, the Go runtime) are then stored once in the
// payload and in containerd, and their pages are shared in memory: 126 MB
// as two programs, 86 MB as one. Built by hack/payload.sh in this module
// of its own, so their dependencies never move regente's.
package main

import (
	"os"
	"path/filepath"

	"github.com/coredns/coredns/coremain"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/component-base/logs"
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
	default:
		os.Stderr.WriteString("addons: run as coredns or metrics-server (by a link of that name), not as " + name + "\n")
		os.Exit(2)
	}
}
