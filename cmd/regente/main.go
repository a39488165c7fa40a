// Command regente is a Kubernetes distribution in one binary. main only
// dispatches on argv[0] and the first argument; every verb lives in pkg/cli.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"syscall"

	"k8s.io/klog/v2"

	agentverb "regente.io/regente/pkg/cli/agent"
	certificateverb "regente.io/regente/pkg/cli/certificate"
	checkconfigverb "regente.io/regente/pkg/cli/checkconfig"
	crictlverb "regente.io/regente/pkg/cli/crictl"
	ctrverb "regente.io/regente/pkg/cli/ctr"
	killallverb "regente.io/regente/pkg/cli/killall"
	kubectlverb "regente.io/regente/pkg/cli/kubectl"
	secretsencryptverb "regente.io/regente/pkg/cli/secretsencrypt"
	serververb "regente.io/regente/pkg/cli/server"
	snapshotverb "regente.io/regente/pkg/cli/snapshot"
	tokenverb "regente.io/regente/pkg/cli/token"
	"regente.io/regente/pkg/sdnotify"
	"regente.io/regente/pkg/version"
)

const usage = `regente: Kubernetes in one binary.

Usage:
  regente server [flags]    run the control plane (see regente server --help)
  regente agent [flags]     join a server as a node (see regente agent --help)
  regente token create|list|delete|rotate   manage join tokens (see regente token --help)
  regente etcd-snapshot save|ls|delete|prune   snapshots of the datastore (see --help)
  regente certificate check|rotate|rotate-ca   certificates and CAs (see regente certificate --help)
  regente secrets-encrypt status|enable|disable|prepare|rotate|reencrypt|rotate-keys   Secrets at rest (see --help)
  regente check-config [flags]   check this host for what regente needs, with fixes (see --help)
  regente kubectl [args]    run kubectl against the local cluster
  regente ctr [args]        run containerd's ctr against the node's containerd
  regente crictl [args]     run crictl against the node's containerd
  regente killall           stop the node's pods and remove their mounts, devices and rules
  regente --version         print regente, Kubernetes, kine and Go versions
  regente help              print this help

A symlink named kubectl, crictl or ctr to this binary behaves as
"regente kubectl", "regente crictl" or "regente ctr".
Every day-2 verb finds the node's data and run dirs as server and agent do:
--data-dir/--run-dir, else REGENTE_DATA_DIR/REGENTE_RUN_DIR, else the config
file (/etc/regente/config.yaml and config.yaml.d, or --config/REGENTE_CONFIG).
`

func main() {
	os.Exit(run(filepath.Base(os.Args[0]), os.Args[1:]))
}

func run(prog string, args []string) int {
	switch prog {
	case "kubectl", "crictl", "ctr":
		// A link named after the tool, as install.sh creates.
		args = append([]string{prog}, args...)
	}
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return 2
	}
	switch args[0] {
	case "server":
		return runDaemon("server", serververb.Run, args[1:])
	case "agent":
		return runDaemon("agent", agentverb.Run, args[1:])
	case "check-config":
		return checkconfigverb.Run(args[1:], os.Stdout, os.Stderr)
	case "kubectl":
		kubectlverb.Run(args[1:])
		return 0
	case "etcd-snapshot":
		return exitCode("etcd-snapshot", snapshotverb.Run(args[1:], os.Stdout))
	case "certificate":
		return exitCode("certificate", certificateverb.Run(args[1:], os.Stdout))
	case "secrets-encrypt":
		return exitCode("secrets-encrypt", secretsencryptverb.Run(context.Background(), args[1:], os.Stdout))
	case "token":
		return exitCode("token", tokenverb.Run(context.Background(), args[1:], os.Stdout))
	case "crictl":
		return exitCode("crictl", crictlverb.Run(args[1:]))
	case "ctr":
		return exitCode("ctr", ctrverb.Run(context.Background(), args[1:]))
	case "killall":
		return exitCode("killall", killallverb.Run(args[1:], os.Stderr))
	case "--version", "-v", "version":
		version.Print(os.Stdout)
		return 0
	case "help", "-h", "--help":
		fmt.Print(usage)
		return 0
	default:
		fmt.Fprintf(os.Stderr, "regente: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}

func exitCode(verb string, err error) int {
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", verb, err)
		return 1
	}
	return 0
}

// runDaemon runs a long-lived verb (server, agent) until a signal.
func runDaemon(verb string, run func(context.Context, []string, io.Writer) error, args []string) int {
	// A node's memory is scarcer than its CPU: collect at half of Go's
	// default heap growth (about 30 MB less idle heap for a little GC
	// work), unless the user chose with GOGC.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(50)
	}
	ctx, cancel := context.WithCancel(sdnotify.Detach(context.Background()))
	defer cancel()
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		sig := <-signals
		klog.InfoS("Stopping on signal; a second signal exits at once", "signal", sig.String())
		cancel()
		<-signals
		os.Exit(1)
	}()
	err := run(ctx, args, os.Stdout)
	klog.Flush()
	if err != nil {
		fmt.Fprintf(os.Stderr, "regente %s: %v\n", verb, err)
		return 1
	}
	return 0
}
