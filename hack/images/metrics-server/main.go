// Command metrics-server is metrics-server (sigs.k8s.io/metrics-server,
// linked, not modified), for the system image regente carries
// (pkg/sysimages). Built by hack/payload.sh in this module of its own, so
// its Kubernetes libraries never move regente's.
package main

import (
	"os"

	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/component-base/logs"

	"sigs.k8s.io/metrics-server/cmd/metrics-server/app"
)

func main() {
	logs.InitLogs()
	cmd := app.NewMetricsServerCommand(genericapiserver.SetupSignalHandler())
	err := cmd.Execute()
	logs.FlushLogs()
	if err != nil {
		os.Exit(1)
	}
}
