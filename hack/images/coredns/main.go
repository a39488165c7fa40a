// Command coredns is CoreDNS (github.com/coredns/coredns, linked, not
// modified) with the plugins a cluster's DNS needs, for the system image
// regente carries (pkg/sysimages). Built by hack/payload.sh in this module
// of its own, so CoreDNS's dependencies never move regente's.
package main

import (
	"github.com/coredns/coredns/coremain"

	// Each plugin registers itself. CoreDNS's own directive order
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
	coremain.Run()
}
