package join

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"regente.io/regente/pkg/component"
	"regente.io/regente/pkg/kubeconfig"
)

// PasswordCleanup deletes a node's password Secret when its Node is
// deleted, so that `kubectl delete node` frees the name for a re-installed
// machine, and runs the other clean-ups a deleted node needs (such as
// leaving the etcd cluster).
type PasswordCleanup struct {
	component.Runner
	kubeconfig string
	onDelete   []NodeDeleted
}

// NodeDeleted cleans up after the named node was deleted.
type NodeDeleted func(ctx context.Context, nodeName string) error

var (
	_ component.Component = (*PasswordCleanup)(nil)
	_ component.Failer    = (*PasswordCleanup)(nil)
)

// NewPasswordCleanup returns the component.
func NewPasswordCleanup(kubeconfig string, onDelete ...NodeDeleted) *PasswordCleanup {
	return &PasswordCleanup{kubeconfig: kubeconfig, onDelete: onDelete}
}

// Name implements component.Component.
func (p *PasswordCleanup) Name() string { return "node-password-cleanup" }

// Start watches Node deletions until Stop.
func (p *PasswordCleanup) Start(ctx context.Context) error {
	_, client, err := kubeconfig.Client(p.kubeconfig)
	if err != nil {
		return err
	}
	logger := klog.FromContext(ctx).WithValues("component", p.Name())
	return p.Runner.Start(klog.NewContext(ctx, logger), func(ctx context.Context) (func() error, error) {
		return func() error {
			factory := informers.NewSharedInformerFactory(client, 0)
			_, err := factory.Core().V1().Nodes().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
				DeleteFunc: func(obj any) {
					if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
						obj = tomb.Obj
					}
					node, ok := obj.(*corev1.Node)
					if !ok {
						return
					}
					// Apart from the informer's goroutine: a clean-up
					// may retry for minutes.
					go func() {
						for _, f := range p.onDelete {
							if err := f(ctx, node.Name); err != nil {
								logger.Error(err, "Cannot clean up after a deleted node", "node", node.Name)
							}
						}
					}()
					err := client.CoreV1().Secrets(metav1.NamespaceSystem).Delete(ctx, NodePasswordSecret(node.Name), metav1.DeleteOptions{})
					if err != nil && !apierrors.IsNotFound(err) {
						logger.Error(err, "Cannot delete the password of a deleted node; its name stays taken", "node", node.Name)
						return
					}
					logger.Info("Node deleted: its name is free to join again", "node", node.Name)
				},
			})
			if err != nil {
				return err
			}
			factory.Start(ctx.Done())
			<-ctx.Done()
			factory.Shutdown()
			return nil
		}, nil
	})
}
