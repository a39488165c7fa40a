package cis

import (
	"context"
	"fmt"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"regente.io/regente/pkg/checkconfig"
	"regente.io/regente/pkg/datadir"
)

// Options say which server to check.
type Options struct {
	// Layout is the server's data and run dirs, on this host.
	Layout datadir.Layout
	// Timeout bounds each live probe.
	Timeout time.Duration
}

// profileFix is the fix of every control that --profile cis satisfies.
const profileFix = "start the server (and agents) with --profile cis"

// control is one benchmark item: its number in the benchmark, what it
// asks, and the check, which says what it found and whether that passes.
type control struct {
	id, title string
	fix       string
	check     func(ctx context.Context, p *probe) (detail string, ok bool)
}

// Run checks the server whose layout opts names, with its admin
// credentials, and returns one result per control in benchmark order.
// The error is for a server that cannot be checked at all (not running,
// no admin kubeconfig).
func Run(ctx context.Context, opts Options) ([]checkconfig.Result, error) {
	if opts.Timeout == 0 {
		opts.Timeout = 10 * time.Second
	}
	kubeconfig := opts.Layout.Server.AdminKubeconfig
	restConfig, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("read the admin kubeconfig %s (is a server initialized in --data-dir %s?): %w", kubeconfig, opts.Layout.DataDir, err)
	}
	restConfig.Timeout = opts.Timeout
	client, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		return nil, fmt.Errorf("client for %s: %w", kubeconfig, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*opts.Timeout)
	defer cancel()
	if _, err := client.Discovery().ServerVersion(); err != nil {
		return nil, fmt.Errorf("reach the API server of %s (start the server first): %w", kubeconfig, err)
	}
	p := &probe{layout: opts.Layout, rest: restConfig, client: client, timeout: opts.Timeout}
	if err := p.loadNodes(ctx); err != nil {
		return nil, err
	}
	var results []checkconfig.Result
	for _, c := range controls() {
		detail, ok := c.check(ctx, p)
		r := checkconfig.Result{Name: c.id, Status: checkconfig.OK, Detail: c.title + ": " + detail}
		if !ok {
			r.Status, r.Fix = checkconfig.Fail, c.fix
		}
		results = append(results, r)
	}
	return results, nil
}

// controls are the checked benchmark items, in the benchmark's order. The
// numbers are CIS Kubernetes Benchmark v1.10's.
func controls() []control {
	return []control{
		{"1.1.12", "etcd and SQLite data directory is 0700", "chmod 0700 the directory named", dataDirModes},
		{"1.1.19/20", "PKI keys and certificates are root's and keys are 0600", "chown root:root and chmod 0600 the files named", pkiModes},
		{"1.1.13-18", "kubeconfigs and tokens of the control plane are 0600", "chmod 0600 the files named (the admin kubeconfig's copy through --write-kubeconfig-mode 0600)", credentialModes},
		{"1.2.1", "API server refuses anonymous requests beyond health checks", "do not pass --kube-apiserver-arg=anonymous-auth=true or an authentication config that widens it", anonymousRefused},
		{"1.2.6-8", "authorization is Node and RBAC, never AlwaysAllow", "do not override --kube-apiserver-arg=authorization-mode", authorizationEnforced},
		{"1.2.15", "NodeRestriction admission plugin limits what nodes change", "do not override --kube-apiserver-arg=enable-admission-plugins without NodeRestriction", nodeRestriction},
		{"1.2.16", "API server profiling is off", "do not pass --kube-apiserver-arg=profiling=true", apiserverProfilingOff},
		{"1.2.17-20", "API server writes an audit log", profileFix, auditLogWritten},
		{"1.2.29-31", "Secrets are encrypted at rest", profileFix + ", or run regente secrets-encrypt enable on an existing cluster", secretsEncrypted},
		{"1.3.7", "controller-manager listens on loopback only", "do not pass --kube-controller-manager-arg=bind-address", loopbackOnly(10257, "kube-controller-manager")},
		{"1.4.2", "scheduler listens on loopback only", "do not pass --kube-scheduler-arg=bind-address", loopbackOnly(10259, "kube-scheduler")},
		{"2.1-2.2", "etcd requires client certificates", "do not pass --etcd-arg=client-cert-auth=false", etcdCertsRequired},
		{"4.1.1-10", "kubelet's kubeconfig and config are 0600", "chmod 0600 the files named", kubeletFileModes},
		{"4.2.1-3", "kubelets refuse anonymous requests and authorize by webhook", "do not pass --kubelet-arg=anonymous-auth or authorization-mode", kubeletAuth},
		{"4.2.4", "kubelets' read-only port is off", "do not pass --kubelet-arg=read-only-port", kubeletReadOnlyPortOff},
		{"4.2.6", "kubelets protect kernel defaults", profileFix + " (or --protect-kernel-defaults) on every node", kubeletProtectsKernelDefaults},
		{"5.2", "Pod Security admission rejects privileged pods outside kube-system", profileFix + ", or label each namespace pod-security.kubernetes.io/enforce=restricted", privilegedPodRejected},
	}
}
