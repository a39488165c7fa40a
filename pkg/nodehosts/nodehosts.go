package nodehosts

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"regente.io/regente/pkg/component"
	"regente.io/regente/pkg/kubeconfig"
)

const (
	configMapNamespace = "kube-system"
	configMapName      = "coredns"
	key                = "NodeHosts"
	fieldManager       = "regente-node-hosts"
	retryAfter         = 5 * time.Second
)

// NodeHosts is the component.
type NodeHosts struct {
	component.Runner
	kubeconfig string
}

var (
	_ component.Component = (*NodeHosts)(nil)
	_ component.Failer    = (*NodeHosts)(nil)
)

// New returns the component; kubeconfig must be allowed to read nodes and
// apply ConfigMaps in kube-system.
func New(kubeconfig string) *NodeHosts { return &NodeHosts{kubeconfig: kubeconfig} }

// Name implements component.Component.
func (n *NodeHosts) Name() string { return "node-hosts" }

// Start watches nodes and rewrites NodeHosts whenever one changes.
func (n *NodeHosts) Start(ctx context.Context) error {
	_, client, err := kubeconfig.Client(n.kubeconfig)
	if err != nil {
		return err
	}
	logger := klog.FromContext(ctx).WithValues("component", "node-hosts")
	return n.Runner.Start(klog.NewContext(ctx, logger), func(ctx context.Context) (func() error, error) {
		return func() error { return run(ctx, client) }, nil
	})
}

func run(ctx context.Context, client kubernetes.Interface) error {
	factory := informers.NewSharedInformerFactory(client, 0)
	nodes := factory.Core().V1().Nodes()
	changed := make(chan struct{}, 1)
	notify := func(any) {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	if _, err := nodes.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    notify,
		UpdateFunc: func(_, obj any) { notify(obj) },
		DeleteFunc: notify,
	}); err != nil {
		return err
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	written := ""
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		}
		list, err := nodes.Lister().List(labels.Everything())
		if err != nil {
			return err
		}
		hosts := Render(list)
		if hosts == written {
			continue
		}
		cm := corev1ac.ConfigMap(configMapName, configMapNamespace).WithData(map[string]string{key: hosts})
		if _, err := client.CoreV1().ConfigMaps(configMapNamespace).Apply(ctx, cm, metav1.ApplyOptions{FieldManager: fieldManager, Force: true}); err != nil {
			klog.FromContext(ctx).Error(err, "Cannot update CoreDNS's NodeHosts; retrying")
			time.AfterFunc(retryAfter, func() { notify(nil) })
			continue
		}
		written = hosts
	}
}

// Render returns the hosts file for nodes: "<InternalIP> <name>" lines in
// name order, one per address the node reports.
func Render(nodes []*corev1.Node) string {
	type entry struct{ name, ip string }
	var entries []entry
	for _, node := range nodes {
		for _, a := range node.Status.Addresses {
			if a.Type == corev1.NodeInternalIP {
				entries = append(entries, entry{node.Name, a.Address})
			}
		}
	}
	slices.SortFunc(entries, func(a, b entry) int {
		return cmp.Or(cmp.Compare(a.name, b.name), cmp.Compare(a.ip, b.ip))
	})
	var out strings.Builder
	for _, e := range entries {
		fmt.Fprintf(&out, "%s %s\n", e.ip, e.name)
	}
	return out.String()
}
