package proxy

import (
	"context"
	"fmt"
	"os/exec"

	"github.com/spf13/pflag"
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/cmd/kube-proxy/app"

	"regente.io/regente/pkg/component"
)

// Config is what kube-proxy needs from the agent.
type Config struct {
	NodeName    string
	Kubeconfig  string // the kube-proxy kubeconfig (system:kube-proxy)
	ClusterCIDR string
	ExtraArgs   []string // the user's --kube-proxy-arg values, "--key=value"
}

// Proxy is the kube-proxy component.
type Proxy struct {
	component.Runner
	cfg  Config
	opts *app.Options
	fs   *pflag.FlagSet
}

var (
	_ component.Component = (*Proxy)(nil)
	_ component.Failer    = (*Proxy)(nil)
)

// New returns the kube-proxy component.
func New(cfg Config) *Proxy { return &Proxy{cfg: cfg} }

// Name implements component.Component.
func (p *Proxy) Name() string { return "kube-proxy" }

var _ component.Initer = (*Proxy)(nil)

// Init parses the flags and checks the host tools of the chosen mode.
func (p *Proxy) Init(context.Context) error {
	p.opts = app.NewOptions()
	p.fs = pflag.NewFlagSet("kube-proxy", pflag.ContinueOnError)
	p.opts.AddFlags(p.fs)
	defaults := []string{
		"--kubeconfig=" + p.cfg.Kubeconfig,
		"--hostname-override=" + p.cfg.NodeName,
		"--cluster-cidr=" + p.cfg.ClusterCIDR,
		"--proxy-mode=iptables",
		// Leave the host's conntrack table size alone: raising it needs
		// a writable /proc/sys and is the administrator's call.
		"--conntrack-max-per-core=0",
		"--metrics-bind-address=127.0.0.1:10249",
		"--healthz-bind-address=127.0.0.1:10256",
	}
	if err := p.fs.Parse(component.MergeArgs(defaults, p.cfg.ExtraArgs)); err != nil {
		return fmt.Errorf("parse kube-proxy flags (check --kube-proxy-arg): %w", err)
	}
	for program, pkg := range HostTools(p.NFTables()) {
		if _, err := exec.LookPath(program); err != nil {
			return fmt.Errorf("%s not found in PATH: kube-proxy needs it; install the %q package (apt-get install %s), or run with --disable-agent", program, pkg, pkg)
		}
	}
	return nil
}

// HostTools are the programs kube-proxy runs in the iptables or the
// nftables mode, each with the Debian/Ubuntu package that has it;
// `regente check-config` reports the same list.
func HostTools(nftables bool) map[string]string {
	if nftables {
		return map[string]string{"nft": "nftables", "conntrack": "conntrack"}
	}
	// The iptables proxier reads and writes its rules in bulk with
	// iptables-save and iptables-restore, not only with iptables.
	return map[string]string{"iptables": "iptables", "iptables-save": "iptables", "iptables-restore": "iptables", "conntrack": "conntrack"}
}

// Start completes the options and runs kube-proxy until Stop.
func (p *Proxy) Start(ctx context.Context) error {
	logger := klog.FromContext(ctx).WithValues("component", "kube-proxy")
	return p.Runner.Start(klog.NewContext(ctx, logger), func(ctx context.Context) (func() error, error) {
		if err := p.opts.Complete(p.fs); err != nil {
			return nil, fmt.Errorf("complete kube-proxy options: %w", err)
		}
		if err := p.opts.Validate(); err != nil {
			return nil, fmt.Errorf("validate kube-proxy options (check --kube-proxy-arg): %w", err)
		}
		return func() error { return p.opts.Run(ctx) }, nil
	})
}

// Stop cancels kube-proxy's context without waiting: upstream's
// ProxyServer.Run returns only when its healthz or metrics server fails,
// never when its context ends, so it ends with the process. Its rules stay
// in the kernel, so Services keep working while regente restarts.
func (p *Proxy) Stop(context.Context) error {
	p.Runner.Cancel()
	return nil
}

// NFTables reports whether kube-proxy runs in nftables mode; valid once
// Init has run.
func (p *Proxy) NFTables() bool {
	if p.fs == nil {
		return false
	}
	// Lookup, not GetString: the flag's type is kube-proxy's ProxyMode.
	f := p.fs.Lookup("proxy-mode")
	return f != nil && f.Value.String() == "nftables"
}
