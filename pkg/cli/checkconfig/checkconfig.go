// Package checkconfig is the `regente check-config` verb: it turns its
// flags into the role, ports and host tools to check and hands them to
// pkg/checkconfig, which does the checking.
package checkconfig

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"slices"
	"strconv"

	"github.com/spf13/pflag"

	"regente.io/regente/pkg/checkconfig"
	"regente.io/regente/pkg/cis"
	"regente.io/regente/pkg/config"
	"regente.io/regente/pkg/datadir"
	"regente.io/regente/pkg/etcd"
	"regente.io/regente/pkg/network"
	"regente.io/regente/pkg/proxy"
)

const usage = `Usage: regente check-config [flags]

Checks this host for what regente needs and prints each finding as OK, WARN
or FAIL, with the command that fixes every WARN and FAIL. It changes nothing.
Exit status: 0 when regente can run here (nothing failed), 1 when a check
failed, 2 on bad flags.

With --cis it checks the server running on this host instead, against the
controls of the CIS Kubernetes Benchmark that apply to regente, probing
the running API server, kubelets and etcd with the admin credentials of
--data-dir. A server started with --profile cis passes every control.

Flags:
%s`

// Roles are the accepted values of --role.
var roles = []string{"server", "agent", "control-plane"}

// ExitStatus is check-config's result when it is not 0: 1 when a check
// failed, 2 on bad flags. The report is printed already.
type ExitStatus int

func (e ExitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// ExitCode is the process's exit status.
func (e ExitStatus) ExitCode() int { return int(e) }

// Run runs `regente check-config args...`.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if code := run(ctx, args, stdout, stderr); code != 0 {
		return ExitStatus(code)
	}
	return nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	server, agent := config.NewServer(), config.NewAgent()
	fs := pflag.NewFlagSet("check-config", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	role := fs.String("role", "server", "What this host will run: server (control plane and node), agent (node only), control-plane (server --disable-agent)")
	dirs := config.NewDirs()
	dirs.AddFlags(fs)
	apiPort := fs.Int("https-listen-port", server.HTTPSListenPort, "The server's --https-listen-port")
	withEtcd := fs.Bool("etcd", false, "Also check the embedded etcd ports (servers with --cluster-init, or joining one with --server)")
	output := fs.String("output", "text", "Output format: text or json")
	withCIS := fs.Bool("cis", false, "Check the server running on this host against the CIS Kubernetes Benchmark instead of checking the host")
	if err := config.LoadVerb("check-config", fs, dirs, args, os.LookupEnv, "https-listen-port"); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			fmt.Fprintf(stdout, usage, fs.FlagUsages())
			return 0
		}
		return usageError(stderr, err.Error())
	}
	switch {
	case fs.NArg() > 0:
		return usageError(stderr, fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	case !slices.Contains(roles, *role):
		return usageError(stderr, fmt.Sprintf("--role %q is not one of %v", *role, roles))
	case *output != "text" && *output != "json":
		return usageError(stderr, fmt.Sprintf("--output %q is not text or json", *output))
	case *apiPort < 1 || *apiPort > 65535:
		return usageError(stderr, fmt.Sprintf("--https-listen-port %d is out of range: use a port between 1 and 65535", *apiPort))
	}
	layout := dirs.Layout()
	if *withCIS {
		return runCIS(ctx, layout, *output, stdout, stderr)
	}
	opts := checkconfig.Options{
		Root:    "/",
		DataDir: dirs.DataDir,
		Node:    *role != "control-plane",
		Euid:    os.Geteuid(),
		// The agent keeps its lock beside the server's, under agent/
		// (pkg/agent).
		LockFiles: []string{layout.Server.LockFile, layout.Agent.LockFile},
	}
	if *role != "agent" {
		opts.Ports = append(opts.Ports,
			checkconfig.Port{Network: "tcp", Addr: net.JoinHostPort(server.BindAddress, strconv.Itoa(*apiPort)), Owner: "kube-apiserver", Fix: "pass another --https-listen-port"},
			checkconfig.Port{Network: "tcp", Addr: "127.0.0.1:10257", Owner: "kube-controller-manager"},
			checkconfig.Port{Network: "tcp", Addr: "127.0.0.1:10259", Owner: "kube-scheduler"})
		if *withEtcd {
			opts.Ports = append(opts.Ports,
				checkconfig.Port{Network: "tcp", Addr: ":" + strconv.Itoa(etcd.ClientPort), Owner: "etcd"},
				checkconfig.Port{Network: "tcp", Addr: ":" + strconv.Itoa(etcd.PeerPort), Owner: "etcd"})
		}
	}
	if opts.Node {
		opts.Tools = tools()
		opts.Ports = append(opts.Ports,
			checkconfig.Port{Network: "tcp", Addr: "0.0.0.0:10250", Owner: "kubelet"},
			checkconfig.Port{Network: "tcp", Addr: "127.0.0.1:10248", Owner: "kubelet healthz"},
			checkconfig.Port{Network: "tcp", Addr: "127.0.0.1:10249", Owner: "kube-proxy metrics"},
			checkconfig.Port{Network: "tcp", Addr: "127.0.0.1:10256", Owner: "kube-proxy healthz"},
			checkconfig.Port{Network: "udp", Addr: "0.0.0.0:8472", Owner: "flannel", Fix: "pass --flannel-backend=host-gw on the server"})
		if *role == "agent" {
			opts.Ports = append(opts.Ports, checkconfig.Port{Network: "tcp", Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(agent.LBServerPort)),
				Owner: "the agent's load balancer", Fix: "pass another --lb-server-port"})
		}
	}
	results := checkconfig.Run(opts)
	if *output == "json" {
		if err := checkconfig.WriteJSON(stdout, results); err != nil {
			fmt.Fprintf(stderr, "check-config: write the result: %v\n", err)
			return 1
		}
	} else {
		fmt.Fprintf(stdout, "Checking this host for regente --role %s (data dir %s)\n\n", *role, dirs.DataDir)
		checkconfig.Print(stdout, results)
	}
	if !checkconfig.CanRun(results) {
		return 1
	}
	return 0
}

// runCIS checks the running server against the CIS benchmark.
func runCIS(ctx context.Context, layout datadir.Layout, output string, stdout, stderr io.Writer) int {
	results, err := cis.Run(ctx, cis.Options{Layout: layout})
	if err != nil {
		fmt.Fprintf(stderr, "check-config --cis: %v\n", err)
		return 1
	}
	if output == "json" {
		if err := checkconfig.WriteJSON(stdout, results); err != nil {
			fmt.Fprintf(stderr, "check-config: write the result: %v\n", err)
			return 1
		}
	} else {
		fmt.Fprintf(stdout, "Checking the server of data dir %s against the CIS Kubernetes Benchmark\n\n", layout.DataDir)
		_, fails := checkconfig.PrintFindings(stdout, results)
		fmt.Fprintf(stdout, "\n%d of %d controls pass\n", len(results)-fails, len(results))
	}
	if !checkconfig.CanRun(results) {
		return 1
	}
	return 0
}

func usageError(stderr io.Writer, msg string) int {
	fmt.Fprintf(stderr, "check-config: %s; run \"regente check-config --help\"\n", msg)
	return 2
}

// tools are the host programs a node runs, taken from the components that
// run them, plus those regente runs only to clean up.
func tools() []checkconfig.Tool {
	var list []checkconfig.Tool
	seen := map[string]bool{}
	add := func(programs map[string]string, why string, optional bool) {
		for _, program := range slices.Sorted(maps.Keys(programs)) {
			if !seen[program] {
				seen[program] = true
				list = append(list, checkconfig.Tool{Program: program, Package: programs[program], Why: why, Optional: optional})
			}
		}
	}
	// kube-proxy runs in iptables mode unless --kube-proxy-arg says
	// otherwise; nftables mode needs nft, checked below as optional.
	add(proxy.HostTools(false), "kube-proxy", false)
	add(network.HostTools(), "flannel", false)
	add(map[string]string{"ip6tables": "iptables"}, "kube-proxy, for IPv6 Services", true)
	add(map[string]string{"nft": "nftables"}, "regente, to remove its NetworkPolicy table (and kube-proxy in nftables mode)", true)
	add(map[string]string{"ip": "iproute2"}, "regente killall, to remove pod network namespaces and links", true)
	return list
}
