package cloudprovider

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	cloudprovider "k8s.io/cloud-provider"
	nodecontroller "k8s.io/cloud-provider/controllers/node"
	controllersmetrics "k8s.io/component-base/metrics/prometheus/controllers"
	"k8s.io/klog/v2"

	"regente.io/regente/pkg/component"
	"regente.io/regente/pkg/kubeconfig"
)

// The annotations a node announces its addresses in (comma-separated).
const (
	InternalIPAnnotation = "node.regente.io/internal-ip"
	ExternalIPAnnotation = "node.regente.io/external-ip"
)

// ProviderName is the provider's name, the scheme of the nodes' providerID.
const ProviderName = "regente"

// provider implements cloudprovider.Interface with instances only.
type provider struct{}

var (
	_ cloudprovider.Interface   = provider{}
	_ cloudprovider.InstancesV2 = provider{}
)

func (provider) Initialize(cloudprovider.ControllerClientBuilder, <-chan struct{}) {}
func (provider) LoadBalancer() (cloudprovider.LoadBalancer, bool)                  { return nil, false }
func (provider) Instances() (cloudprovider.Instances, bool)                        { return nil, false }
func (p provider) InstancesV2() (cloudprovider.InstancesV2, bool)                  { return p, true }
func (provider) Zones() (cloudprovider.Zones, bool)                                { return nil, false }
func (provider) Clusters() (cloudprovider.Clusters, bool)                          { return nil, false }
func (provider) Routes() (cloudprovider.Routes, bool)                              { return nil, false }
func (provider) ProviderName() string                                              { return ProviderName }
func (provider) HasClusterID() bool                                                { return false }

// InstanceExists is true: a node is a machine that ran regente; removing
// it is `kubectl delete node`.
func (provider) InstanceExists(context.Context, *corev1.Node) (bool, error) { return true, nil }

// InstanceShutdown is false: there is no cloud to ask.
func (provider) InstanceShutdown(context.Context, *corev1.Node) (bool, error) { return false, nil }

// errNotAnnounced makes the controller retry a node that registered before
// its agent announced its addresses.
var errNotAnnounced = errors.New("the node has not announced its addresses yet")

// InstanceMetadata returns the addresses the node announced.
func (provider) InstanceMetadata(_ context.Context, node *corev1.Node) (*cloudprovider.InstanceMetadata, error) {
	return Metadata(node)
}

// Metadata returns node's addresses from its annotations.
func Metadata(node *corev1.Node) (*cloudprovider.InstanceMetadata, error) {
	internal, ok := node.Annotations[InternalIPAnnotation]
	if !ok {
		return nil, fmt.Errorf("node %s: %w", node.Name, errNotAnnounced)
	}
	var addrs []corev1.NodeAddress
	for _, a := range []struct {
		kind corev1.NodeAddressType
		list string
	}{{corev1.NodeInternalIP, internal}, {corev1.NodeExternalIP, node.Annotations[ExternalIPAnnotation]}} {
		for _, ip := range strings.Split(a.list, ",") {
			if ip = strings.TrimSpace(ip); ip == "" {
				continue
			}
			if net.ParseIP(ip) == nil {
				return nil, fmt.Errorf("node %s: annotation of %s addresses holds %q, not an IP", node.Name, a.kind, ip)
			}
			addrs = append(addrs, corev1.NodeAddress{Type: a.kind, Address: ip})
		}
	}
	addrs = append(addrs, corev1.NodeAddress{Type: corev1.NodeHostName, Address: node.Name})
	return &cloudprovider.InstanceMetadata{ProviderID: ProviderName + "://" + node.Name, NodeAddresses: addrs}, nil
}

// Controller runs upstream's cloud node controller with the provider.
type Controller struct {
	component.Runner
	kubeconfig string
}

var (
	_ component.Component = (*Controller)(nil)
	_ component.Failer    = (*Controller)(nil)
)

// NewController returns the component; kubeconfig must update nodes.
func NewController(kubeconfig string) *Controller { return &Controller{kubeconfig: kubeconfig} }

// Name implements component.Component.
func (c *Controller) Name() string { return "cloud-node-controller" }

// statusUpdate is how often every node's addresses are re-read.
const statusUpdate = time.Minute

// Start runs the controller until Stop.
func (c *Controller) Start(ctx context.Context) error {
	_, client, err := kubeconfig.Client(c.kubeconfig)
	if err != nil {
		return err
	}
	logger := klog.FromContext(ctx).WithValues("component", c.Name())
	return c.Runner.Start(klog.NewContext(ctx, logger), func(ctx context.Context) (func() error, error) {
		factory := informers.NewSharedInformerFactory(client, 0)
		controller, err := nodecontroller.NewCloudNodeController(factory.Core().V1().Nodes(), client, provider{}, statusUpdate, 1, 1)
		if err != nil {
			return nil, fmt.Errorf("create the cloud node controller: %w", err)
		}
		return func() error {
			factory.Start(ctx.Done())
			defer factory.Shutdown()
			controller.RunWithContext(ctx, controllersmetrics.NewControllerManagerMetrics("regente"))
			return nil
		}, nil
	})
}
