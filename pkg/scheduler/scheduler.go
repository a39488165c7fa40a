package scheduler

import (
	"context"
	"fmt"

	"github.com/spf13/pflag"
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/cmd/kube-scheduler/app"
	"k8s.io/kubernetes/cmd/kube-scheduler/app/options"

	"regente.io/regente/pkg/component"
)

// Config is what the scheduler needs from the server's options.
type Config struct {
	Kubeconfig string
	// LeaderElect is whether schedulers of several servers share the
	// datastore and must elect a leader. A server alone on its SQLite file
	// has no peer to elect against.
	LeaderElect bool
	// ExtraArgs are the user's --kube-scheduler-arg values.
	ExtraArgs []string
}

// Scheduler is the kube-scheduler component.
type Scheduler struct {
	component.Runner
	cfg  Config
	opts *options.Options
	// elects records whether the running scheduler holds a leader lease;
	// see Start for what that changes.
	elects bool
}

var (
	_ component.Component = (*Scheduler)(nil)
	_ component.Failer    = (*Scheduler)(nil)
)

// New returns the scheduler component.
func New(cfg Config) *Scheduler {
	return &Scheduler{cfg: cfg}
}

// Name implements component.Component.
func (s *Scheduler) Name() string { return "scheduler" }

var _ component.Initer = (*Scheduler)(nil)

// Init parses the flags so a bad --kube-scheduler-arg stops the server
// before anything starts.
func (s *Scheduler) Init(context.Context) error {
	opts := options.NewOptions()
	fs := pflag.NewFlagSet("kube-scheduler", pflag.ContinueOnError)
	for _, f := range opts.Flags.FlagSets {
		fs.AddFlagSet(f)
	}
	defaults := []string{
		"--kubeconfig=" + s.cfg.Kubeconfig,
		"--authentication-kubeconfig=" + s.cfg.Kubeconfig,
		"--authorization-kubeconfig=" + s.cfg.Kubeconfig,
		"--bind-address=127.0.0.1",
		"--secure-port=10259",
		"--profiling=false",
		// Binds at up to 100 a second (upstream: 50), to keep up with the
		// controller-manager's ReplicaSets (see package controllermanager).
		"--kube-api-qps=100",
		"--kube-api-burst=200",
		fmt.Sprintf("--leader-elect=%t", s.cfg.LeaderElect),
	}
	if err := fs.Parse(component.MergeArgs(defaults, s.cfg.ExtraArgs)); err != nil {
		return fmt.Errorf("parse kube-scheduler flags (check --kube-scheduler-arg): %w", err)
	}
	s.opts = opts
	return nil
}

// Start sets the scheduler up and runs it.
//
// With leader election, the upstream scheduler ends the process when it
// stops leading: os.Exit(0) when its context ends, exit 1 when it cannot
// renew its lease. Cancelling it would cut our ordered shutdown short, so
// then its context is never cancelled and it runs until the process exits.
// It must not outlive the apiserver by a renew deadline, or the server
// exits 1 instead of 0. Without leader election it returns when its
// context ends and stops like any other component.
func (s *Scheduler) Start(ctx context.Context) error {
	logger := klog.FromContext(ctx).WithValues("component", "scheduler")
	if err := s.opts.ComponentGlobalsRegistry.Set(); err != nil {
		return fmt.Errorf("apply feature gates: %w", err)
	}
	return s.Runner.Start(klog.NewContext(ctx, logger), func(ctx context.Context) (func() error, error) {
		cc, sched, err := app.Setup(ctx, s.opts)
		if err != nil {
			return nil, fmt.Errorf("set up kube-scheduler (check --kube-scheduler-arg): %w", err)
		}
		s.elects = cc.LeaderElection != nil
		return func() error { return app.Run(ctx, cc, sched) }, nil
	})
}

// Stop cancels a scheduler that does not elect a leader and waits for it;
// one that elects ends with the process (see Start).
func (s *Scheduler) Stop(ctx context.Context) error {
	if s.elects {
		return nil
	}
	return s.Runner.Stop(ctx)
}
