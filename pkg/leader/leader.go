package leader

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/klog/v2"

	"regente.io/regente/pkg/component"
	"regente.io/regente/pkg/kubeconfig"
)

// LeaseName is the Lease in kube-system the servers compete for.
const LeaseName = "regente-controllers"

// Elected runs its components only while this server holds the lease.
type Elected struct {
	kubeconfig string
	identity   string
	components []component.Component
	errCh      chan error
	cancel     context.CancelFunc
	done       chan struct{}
}

var (
	_ component.Component = (*Elected)(nil)
	_ component.Failer    = (*Elected)(nil)
)

// New returns the group; nodeName makes the holder readable in the Lease.
func New(kubeconfigPath, nodeName string, components ...component.Component) *Elected {
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	return &Elected{kubeconfig: kubeconfigPath, identity: nodeName + "_" + hex.EncodeToString(suffix),
		components: components, errCh: make(chan error, 1)}
}

// Name implements component.Component.
func (e *Elected) Name() string { return "elected-controllers" }

var _ component.Initer = (*Elected)(nil)

// Init runs every component's Init now, so bad input is reported at start
// on every server, not only on the one that leads.
func (e *Elected) Init(ctx context.Context) error {
	var errs []error
	for _, c := range e.components {
		if err := component.Init(ctx, c); err != nil {
			errs = append(errs, fmt.Errorf("init %s: %w", c.Name(), err))
		}
	}
	return errors.Join(errs...)
}

// Err implements component.Failer.
func (e *Elected) Err() <-chan error { return e.errCh }

// Start campaigns for the lease in the background and returns.
func (e *Elected) Start(ctx context.Context) error {
	_, client, err := kubeconfig.Client(e.kubeconfig)
	if err != nil {
		return err
	}
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: metav1.NamespaceSystem, Name: LeaseName},
		Client:     client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: e.identity},
	}
	logger := klog.FromContext(ctx).WithValues("component", e.Name())
	runCtx, cancel := context.WithCancel(ctx)
	e.cancel, e.done = cancel, make(chan struct{})
	go func() {
		defer close(e.done)
		for runCtx.Err() == nil {
			leaderelection.RunOrDie(runCtx, leaderelection.LeaderElectionConfig{
				Lock:            lock,
				LeaseDuration:   15 * time.Second,
				RenewDeadline:   10 * time.Second,
				RetryPeriod:     2 * time.Second,
				ReleaseOnCancel: true,
				Name:            LeaseName,
				Callbacks: leaderelection.LeaderCallbacks{
					OnStartedLeading: func(leading context.Context) {
						logger.Info("This server leads regente's controllers", "identity", e.identity)
						if err := component.NewManager(e.components...).Run(leading); err != nil {
							select {
							case e.errCh <- err:
							default:
							}
						}
					},
					OnStoppedLeading: func() {
						if runCtx.Err() == nil {
							logger.Info("This server lost the lease of regente's controllers; they stopped here and it campaigns again")
						}
					},
					OnNewLeader: func(identity string) {
						if identity != e.identity {
							logger.Info("Another server leads regente's controllers", "leader", identity)
						}
					},
				},
			})
		}
	}()
	return nil
}

// Stop ends the campaign, stopping the components if this server leads,
// and releases the lease so another server takes over at once.
func (e *Elected) Stop(ctx context.Context) error {
	if e.cancel == nil {
		return nil
	}
	e.cancel()
	select {
	case <-e.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait for the elected controllers to stop: %w", ctx.Err())
	}
}
