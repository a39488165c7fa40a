package netpol

import (
	"context"
	"fmt"

	"k8s.io/client-go/informers"
	"k8s.io/klog/v2"
	"sigs.k8s.io/kube-network-policies/pkg/networkpolicy"

	"regente.io/regente/pkg/component"
	"regente.io/regente/pkg/kubeconfig"
)

// Config configures the controller.
type Config struct {
	NodeName string
	// Kubeconfig must list pods, namespaces and NetworkPolicies cluster-wide
	// (a policy's peers may be on any node).
	Kubeconfig string
	// ClusterCIDR is the pods' range, which the iptables fallback queues.
	ClusterCIDR string
}

// TableName is the nftables table (family inet) the controller owns.
const TableName = "regente-network-policies"

// queueID is the nfqueue the packets wait in for a verdict; nfqueues are
// per network namespace.
const queueID = 100

// NetworkPolicy is the component.
type NetworkPolicy struct {
	component.Runner
	cfg Config
	// iptablesQueue records that Start installed the iptables fallback,
	// which Stop removes.
	iptablesQueue bool
}

var (
	_ component.Component = (*NetworkPolicy)(nil)
	_ component.Failer    = (*NetworkPolicy)(nil)
)

// New returns the component.
func New(cfg Config) *NetworkPolicy { return &NetworkPolicy{cfg: cfg} }

// Name implements component.Component.
func (n *NetworkPolicy) Name() string { return "network-policy" }

// Start runs the controller until Stop.
func (n *NetworkPolicy) Start(ctx context.Context) error {
	_, client, err := kubeconfig.Client(n.cfg.Kubeconfig)
	if err != nil {
		return err
	}
	logger := klog.FromContext(ctx).WithValues("component", "network-policy")
	if err := probeQueue(); err != nil {
		if fallbackErr := queueWithIPTables(n.cfg.ClusterCIDR); fallbackErr != nil {
			// Not fatal: the node is useful without NetworkPolicy, but
			// nobody may believe policies hold on it.
			logger.Error(err, "NetworkPolicy is NOT enforced on this node", "iptablesFallback", fallbackErr.Error())
			return nil
		}
		n.iptablesQueue = true
		logger.Info("This kernel cannot queue packets from nftables (no nft_queue): NetworkPolicy is enforced through iptables NFQUEUE instead, " +
			"which sends every new pod connection for a verdict; `modprobe nft_queue` restores the narrower nftables rules at the next start. " +
			"The controller's own nftables sync keeps failing on this kernel and says so in the log.")
	}
	return n.Runner.Start(klog.NewContext(ctx, logger), func(ctx context.Context) (func() error, error) {
		factory := informers.NewSharedInformerFactory(client, 0)
		controller, err := networkpolicy.NewController(client,
			factory.Networking().V1().NetworkPolicies(),
			factory.Core().V1().Namespaces(),
			factory.Core().V1().Pods(),
			nil, nil, nil, nil, // admin network policies: alpha, not enabled
			networkpolicy.Config{
				NodeName:    n.cfg.NodeName,
				QueueID:     queueID,
				NFTableName: TableName,
				// The DNS conntrack race workaround is harmless on kernels
				// that fixed it (6.12+) and needed on older ones.
				NetfilterBug1766Fix: true,
			})
		if err != nil {
			return nil, fmt.Errorf("create the network policy controller: %w", err)
		}
		return func() error {
			factory.Start(ctx.Done())
			defer factory.Shutdown()
			err := controller.Run(ctx)
			if ctx.Err() != nil {
				return nil
			}
			return err
		}, nil
	})
}

// Stop ends the controller and removes the iptables fallback's rules.
func (n *NetworkPolicy) Stop(ctx context.Context) error {
	err := n.Runner.Stop(ctx)
	if n.iptablesQueue {
		removeIPTablesQueue()
	}
	return err
}
