// Command etcd is upstream etcd's server main, linked from the etcd module
// this module pins: the conformance run's etcd image (the Aggregator spec
// runs it beside the sample API server).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
