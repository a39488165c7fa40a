package controllermanager

import (
	"context"
	"fmt"

	"github.com/spf13/pflag"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/cmd/kube-controller-manager/app"
	"k8s.io/kubernetes/cmd/kube-controller-manager/app/options"

	"regente.io/regente/pkg/certs"
	"regente.io/regente/pkg/component"
)

// Config is what the controller-manager needs from the server's options.
type Config struct {
	Kubeconfig  string
	ClusterCIDR string
	ServiceCIDR string
	PKI         *certs.PKI
	// LeaderElect is whether controller-managers of several servers share
	// the datastore and must elect a leader. A server alone on its SQLite
	// file has no one to elect, and renewing a lease every 2 s would be
	// about a third of an idle server's writes to its disk.
	LeaderElect bool
	// ExtraArgs are the user's --kube-controller-manager-arg values.
	ExtraArgs []string
}

// ControllerManager is the kube-controller-manager component.
type ControllerManager struct {
	component.Runner
	cfg  Config
	opts *options.KubeControllerManagerOptions
}

var (
	_ component.Component = (*ControllerManager)(nil)
	_ component.Failer    = (*ControllerManager)(nil)
)

// New returns the controller-manager component.
func New(cfg Config) *ControllerManager {
	return &ControllerManager{cfg: cfg}
}

// Name implements component.Component.
func (c *ControllerManager) Name() string { return "controller-manager" }

var _ component.Initer = (*ControllerManager)(nil)

// Init parses the flags so a bad --kube-controller-manager-arg stops the
// server before anything starts.
func (c *ControllerManager) Init(context.Context) error {
	opts, err := options.NewKubeControllerManagerOptions()
	if err != nil {
		return fmt.Errorf("create kube-controller-manager options: %w", err)
	}
	named := opts.Flags(app.KnownControllers(), app.ControllersDisabledByDefault(), app.ControllerAliases())
	opts.ParsedFlags = &named
	fs := pflag.NewFlagSet("kube-controller-manager", pflag.ContinueOnError)
	for _, f := range named.FlagSets {
		fs.AddFlagSet(f)
	}
	if err := fs.Parse(component.MergeArgs(c.defaultArgs(), c.cfg.ExtraArgs)); err != nil {
		return fmt.Errorf("parse kube-controller-manager flags (check --kube-controller-manager-arg): %w", err)
	}
	c.opts = opts
	return nil
}

func (c *ControllerManager) defaultArgs() []string {
	p := c.cfg.PKI
	return []string{
		"--kubeconfig=" + c.cfg.Kubeconfig,
		"--authentication-kubeconfig=" + c.cfg.Kubeconfig,
		"--authorization-kubeconfig=" + c.cfg.Kubeconfig,
		"--bind-address=127.0.0.1",
		"--secure-port=10257",
		"--allocate-node-cidrs=true",
		"--cluster-cidr=" + c.cfg.ClusterCIDR,
		"--service-cluster-ip-range=" + c.cfg.ServiceCIDR,
		"--cluster-signing-kubelet-serving-cert-file=" + p.ServerCASigner,
		"--cluster-signing-kubelet-serving-key-file=" + p.ServerCA.Key,
		"--cluster-signing-kubelet-client-cert-file=" + p.ClientCASigner,
		"--cluster-signing-kubelet-client-key-file=" + p.ClientCA.Key,
		"--cluster-signing-kube-apiserver-client-cert-file=" + p.ClientCASigner,
		"--cluster-signing-kube-apiserver-client-key-file=" + p.ClientCA.Key,
		"--cluster-signing-legacy-unknown-cert-file=" + p.ServerCASigner,
		"--cluster-signing-legacy-unknown-key-file=" + p.ServerCA.Key,
		"--root-ca-file=" + p.ServerCA.Cert,
		"--service-account-private-key-file=" + p.ServiceAccountKey,
		"--use-service-account-credentials=true",
		"--controllers=*,tokencleaner",
		"--profiling=false",
		// Each controller's client may send 100 calls a second (upstream:
		// 20), so a ReplicaSet makes pods at 100/s, not 20/s: on SQLite
		// 9,000 pods took 5m20s to create with upstream's rate (bench
		// -only scale). The API server's priority and fairness still
		// bounds what all controllers send at once.
		"--kube-api-qps=100",
		"--kube-api-burst=200",
		fmt.Sprintf("--leader-elect=%t", c.cfg.LeaderElect),
		// Without this gate the upstream controller-manager exits the whole
		// process with status 1 when its context ends while it leads; with
		// it, it releases its lease and returns, so we can stop in order.
		"--feature-gates=ControllerManagerReleaseLeaderElectionLockOnExit=true",
	}
}

// Start builds the upstream config and runs the controllers until Stop.
func (c *ControllerManager) Start(ctx context.Context) error {
	logger := klog.FromContext(ctx).WithValues("component", "controller-manager")
	if err := c.opts.ComponentGlobalsRegistry.Set(); err != nil {
		return fmt.Errorf("apply feature gates: %w", err)
	}
	rest.SetDefaultWarningHandler(rest.NoWarnings{})
	return c.Runner.Start(klog.NewContext(ctx, logger), func(ctx context.Context) (func() error, error) {
		cfg, err := c.opts.Config(ctx, app.KnownControllers(), app.ControllersDisabledByDefault(), app.ControllerAliases())
		if err != nil {
			return nil, fmt.Errorf("configure kube-controller-manager (check --kube-controller-manager-arg): %w", err)
		}
		return func() error { return app.Run(ctx, cfg.Complete()) }, nil
	})
}
