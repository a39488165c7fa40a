package certexpiry

import (
	"context"
	"fmt"
	"hash/fnv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"regente.io/regente/pkg/certs"
	"regente.io/regente/pkg/component"
	"regente.io/regente/pkg/kubeconfig"
)

const (
	// Within is how long before its end a certificate is warned about.
	Within = certs.ExpiringSoon
	// Reason is the events' reason.
	Reason = "CertificateExpiring"
	every  = 12 * time.Hour
)

// Config says whose certificates to watch and where to warn.
type Config struct {
	Kubeconfig string   // may record events
	NodeName   string   // the Node the events are about
	Dirs       []string // TLS dirs
	Now        func() time.Time
}

// Watcher is the component.
type Watcher struct {
	component.Runner
	cfg Config
}

var (
	_ component.Component = (*Watcher)(nil)
	_ component.Failer    = (*Watcher)(nil)
)

// New returns the component.
func New(cfg Config) *Watcher {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Watcher{cfg: cfg}
}

// Name implements component.Component.
func (w *Watcher) Name() string { return "cert-expiry" }

// Start checks now and then every 12 hours.
func (w *Watcher) Start(ctx context.Context) error {
	_, client, err := kubeconfig.Client(w.cfg.Kubeconfig)
	if err != nil {
		return err
	}
	logger := klog.FromContext(ctx).WithValues("component", "cert-expiry")
	return w.Runner.Start(klog.NewContext(ctx, logger), func(ctx context.Context) (func() error, error) {
		return func() error {
			for {
				if err := Check(ctx, client, w.cfg); err != nil {
					logger.Error(err, "Checking certificate expiry")
				}
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(every):
				}
			}
		}, nil
	})
}

// Check warns once about every certificate of cfg.Dirs that ends within
// Within; an event already recorded for a file today is not repeated.
func Check(ctx context.Context, client kubernetes.Interface, cfg Config) error {
	now := cfg.Now()
	expiring, err := certs.Expiring(now, Within, cfg.Dirs...)
	if err != nil {
		return err
	}
	logger := klog.FromContext(ctx)
	for _, c := range expiring {
		days := int(c.NotAfter.Sub(now).Hours() / 24)
		fix := "restart regente to renew it, or run `regente certificate rotate`"
		if c.IsCA {
			fix = "run `regente certificate rotate-ca` (stop regente first)"
		}
		msg := fmt.Sprintf("certificate %s (%s) expires on %s, in %d days: %s", c.File, c.Subject, c.NotAfter.UTC().Format(time.RFC3339), days, fix)
		if days < 0 {
			msg = fmt.Sprintf("certificate %s (%s) expired on %s: %s", c.File, c.Subject, c.NotAfter.UTC().Format(time.RFC3339), fix)
		}
		logger.Info("WARNING: "+msg, "file", c.File)
		if err := record(ctx, client, cfg.NodeName, c.File, msg, now); err != nil {
			return err
		}
	}
	return nil
}

// record writes one event per node, file and day, so a restart loop does
// not flood the event list.
func record(ctx context.Context, client kubernetes.Interface, node, file, msg string, now time.Time) error {
	h := fnv.New32a()
	h.Write([]byte(file))
	name := fmt.Sprintf("%s.cert-expiring.%x.%s", node, h.Sum32(), now.UTC().Format("20060102"))
	stamp := metav1.NewTime(now)
	ev := &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: name, Namespace: metav1.NamespaceDefault},
		InvolvedObject: corev1.ObjectReference{Kind: "Node", Name: node, UID: types.UID(node)},
		Reason:         Reason,
		Message:        msg,
		Type:           corev1.EventTypeWarning,
		Source:         corev1.EventSource{Component: "regente", Host: node},
		FirstTimestamp: stamp,
		LastTimestamp:  stamp,
		Count:          1,
	}
	_, err := client.CoreV1().Events(metav1.NamespaceDefault).Create(ctx, ev, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("record the expiry warning for %s: %w", file, err)
	}
	return nil
}
