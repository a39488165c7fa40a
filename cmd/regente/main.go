// Command regente is a Kubernetes distribution in one binary. main only
// dispatches on argv[0] and the first argument; every verb lives in pkg/cli.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
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

// verb is one `regente <name>` command. Every verb's Run has the same
// shape; a daemon (server, agent) runs until a signal, at half of Go's
// default GC target.
type verb struct {
	name, args, summary string
	run                 func(ctx context.Context, args []string, stdout, stderr io.Writer) error
	daemon              bool
}

// verbs is the one list of regente's commands, in the order help shows them.
var verbs = []verb{
	{"server", "[flags]", "run the control plane (see regente server --help)", serververb.Run, true},
	{"agent", "[flags]", "join a server as a node (see regente agent --help)", agentverb.Run, true},
	{"token", "create|list|delete|rotate", "manage join tokens (see regente token --help)", tokenverb.Run, false},
	{"etcd-snapshot", "save|ls|delete|prune", "snapshots of the datastore, on disk and in S3 (see --help)", snapshotverb.Run, false},
	{"certificate", "check|rotate|rotate-ca", "certificates and CAs (see regente certificate --help)", certificateverb.Run, false},
	{"secrets-encrypt", "status|enable|disable|prepare|rotate|reencrypt|rotate-keys", "Secrets at rest (see --help)", secretsencryptverb.Run, false},
	{"check-config", "[flags]", "check this host for what regente needs, with fixes (see --help)", checkconfigverb.Run, false},
	{"kubectl", "[args]", "run kubectl against the local cluster", kubectlverb.Run, false},
	{"ctr", "[args]", "run containerd's ctr against the node's containerd", ctrverb.Run, false},
	{"crictl", "[args]", "run crictl against the node's containerd", crictlverb.Run, false},
	{"killall", "", "stop the node's pods and remove their mounts, devices and rules", killallverb.Run, false},
}

// usage is the help text, from verbs.
func usage() string {
	var b strings.Builder
	b.WriteString("regente: Kubernetes in one binary.\n\nUsage:\n")
	for _, v := range verbs {
		fmt.Fprintf(&b, "  regente %s %s\n      %s\n", v.name, v.args, v.summary)
	}
	b.WriteString(`  regente --version\n      print regente, Kubernetes, kine and Go versions
  regente help\n      print this help

A symlink named kubectl, crictl or ctr to this binary behaves as
"regente kubectl", "regente crictl" or "regente ctr".
Every day-2 verb finds the node's data and run dirs as server and agent do:
--data-dir/--run-dir, else REGENTE_DATA_DIR/REGENTE_RUN_DIR, else the config
file (/etc/regente/config.yaml and config.yaml.d, or --config/REGENTE_CONFIG).
`)
	return b.String()
}

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
		fmt.Fprint(os.Stderr, usage())
		return 2
	}
	switch args[0] {
	case "--version", "-v", "version":
		version.Print(os.Stdout)
		return 0
	case "help", "-h", "--help":
		fmt.Print(usage())
		return 0
	}
	for _, v := range verbs {
		if v.name != args[0] {
			continue
		}
		if v.daemon {
			return runDaemon(v, args[1:])
		}
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
		defer stop()
		return exitCode(v.name, v.run(ctx, args[1:], os.Stdout, os.Stderr))
	}
	fmt.Fprintf(os.Stderr, "regente: unknown command %q\n\n%s", args[0], usage())
	return 2
}

// exitCode prints a verb's error and returns the process's exit status;
// an error that carries its own status (check-config's) has printed its
// report already.
func exitCode(verb string, err error) int {
	var status interface{ ExitCode() int }
	switch {
	case err == nil:
		return 0
	case errors.As(err, &status):
		return status.ExitCode()
	default:
		fmt.Fprintf(os.Stderr, "%s: %v\n", verb, err)
		return 1
	}
}

// runDaemon runs a long-lived verb (server, agent) until a signal.
func runDaemon(v verb, args []string) int {
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
	err := v.run(ctx, args, os.Stdout, os.Stderr)
	klog.Flush()
	if err != nil {
		fmt.Fprintf(os.Stderr, "regente %s: %v\n", v.name, err)
		return 1
	}
	return 0
}
