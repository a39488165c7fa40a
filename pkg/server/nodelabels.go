package server

import (
	"context"
	"encoding/json"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/klog/v2"

	"regente.io/regente/pkg/component"
	"regente.io/regente/pkg/kubeconfig"
)

// serverRoleLabels are the role labels k3s gives a server's node, which
// tools and node selectors written for k3s look for: control-plane on
// every server, etcd on one with an embedded etcd member.
func serverRoleLabels(embeddedEtcd bool) map[string]string {
	labels := map[string]string{"node-role.kubernetes.io/control-plane": "true"}
	if embeddedEtcd {
		labels["node-role.kubernetes.io/etcd"] = "true"
	}
	return labels
}

// roleLabels puts serverRoleLabels on the server's own node once its
// kubelet has registered it. The kubelet cannot: NodeRestriction keeps a
// node from setting node-role labels on itself, so the server does it
// with its admin credentials.
type roleLabels struct {
	component.Runner
	kubeconfig string
	nodeName   string
	labels     map[string]string
}

var _ component.Failer = (*roleLabels)(nil)

func (r *roleLabels) Name() string { return "server-node-labels" }

// Start patches the labels in the background, retrying every second until
// the node exists.
func (r *roleLabels) Start(ctx context.Context) error {
	return r.Runner.Start(ctx, func(ctx context.Context) (func() error, error) {
		_, client, err := kubeconfig.Client(r.kubeconfig)
		if err != nil {
			return nil, err
		}
		patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"labels": r.labels}})
		if err != nil {
			return nil, err
		}
		logger := klog.FromContext(ctx).WithValues("component", "server-node-labels")
		return func() error {
			reported := false
			_ = wait.PollUntilContextCancel(ctx, time.Second, true, func(ctx context.Context) (bool, error) {
				_, err := client.CoreV1().Nodes().Patch(ctx, r.nodeName, types.MergePatchType, patch, metav1.PatchOptions{})
				if err != nil && !apierrors.IsNotFound(err) && !reported {
					logger.Error(err, "Cannot label the server's node yet; retrying", "node", r.nodeName)
					reported = true
				}
				return err == nil, nil
			})
			<-ctx.Done()
			return nil
		}, nil
	})
}
