package ingress

import (
	"context"
	"crypto/tls"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	networkinglisters "k8s.io/client-go/listers/networking/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
)

// ControllerName is the spec.controller of the IngressClasses served.
const ControllerName = "regente.io/ingress"

// legacyClassAnnotation names the class on Ingresses older than
// spec.ingressClassName, still common in charts.
const legacyClassAnnotation = "kubernetes.io/ingress.class"

// ControllerConfig is what the controller watches and publishes.
type ControllerConfig struct {
	Client kubernetes.Interface
	// PublishService (namespace/name) is the Service in front of the
	// controller's pods: its load-balancer addresses go into the status of
	// every Ingress served. Empty: status is left alone.
	PublishService string
	// DefaultCert is served to clients whose name no Secret covers.
	DefaultCert *tls.Certificate
}

// Controller keeps the routing table and certificates current with the
// API's Ingresses, IngressClasses, Services and TLS Secrets.
type Controller struct {
	cfg       ControllerConfig
	factory   informers.SharedInformerFactory
	tlsOnly   informers.SharedInformerFactory // Secrets of type kubernetes.io/tls only
	ingresses networkinglisters.IngressLister
	classes   networkinglisters.IngressClassLister
	services  corelisters.ServiceLister
	secrets   corelisters.SecretLister
	changed   chan struct{}
	table     atomic.Pointer[Table]
	certs     atomic.Pointer[Certs]
	synced    atomic.Bool
}

// NewController sets up the informers; Run starts them.
func NewController(cfg ControllerConfig) *Controller {
	c := &Controller{
		cfg:     cfg,
		factory: informers.NewSharedInformerFactory(cfg.Client, 10*time.Minute),
		tlsOnly: informers.NewSharedInformerFactoryWithOptions(cfg.Client, 10*time.Minute,
			informers.WithTweakListOptions(func(o *metav1.ListOptions) {
				o.FieldSelector = fields.OneTermEqualSelector("type", string(corev1.SecretTypeTLS)).String()
			})),
		changed: make(chan struct{}, 1),
	}
	c.table.Store(&Table{})
	c.certs.Store(&Certs{fallback: cfg.DefaultCert})
	poke := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { c.poke() },
		UpdateFunc: func(any, any) { c.poke() },
		DeleteFunc: func(any) { c.poke() },
	}
	for _, inf := range []cache.SharedIndexInformer{
		c.factory.Networking().V1().Ingresses().Informer(),
		c.factory.Networking().V1().IngressClasses().Informer(),
		c.factory.Core().V1().Services().Informer(),
		c.tlsOnly.Core().V1().Secrets().Informer(),
	} {
		_, _ = inf.AddEventHandler(poke) // the registration handle is only needed to remove it
	}
	c.ingresses = c.factory.Networking().V1().Ingresses().Lister()
	c.classes = c.factory.Networking().V1().IngressClasses().Lister()
	c.services = c.factory.Core().V1().Services().Lister()
	c.secrets = c.tlsOnly.Core().V1().Secrets().Lister()
	return c
}

// Table is the current routing table.
func (c *Controller) Table() *Table { return c.table.Load() }

// Certificate is a tls.Config's GetCertificate over the current Secrets.
func (c *Controller) Certificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	return c.certs.Load().Get(hello)
}

// Synced reports whether the first table, from complete caches, is in use.
func (c *Controller) Synced() bool { return c.synced.Load() }

func (c *Controller) poke() {
	select {
	case c.changed <- struct{}{}:
	default: // a rebuild is already due; it will see this change too
	}
}

// Run serves until ctx ends, rebuilding the table on every change.
func (c *Controller) Run(ctx context.Context) error {
	c.factory.Start(ctx.Done())
	c.tlsOnly.Start(ctx.Done())
	defer c.factory.Shutdown()
	defer c.tlsOnly.Shutdown()
	for _, synced := range []map[string]bool{typeNames(c.factory.WaitForCacheSync(ctx.Done())), typeNames(c.tlsOnly.WaitForCacheSync(ctx.Done()))} {
		for name, ok := range synced {
			if !ok {
				return fmt.Errorf("sync the %s cache: %w", name, context.Cause(ctx))
			}
		}
	}
	klog.InfoS("Watching Ingresses", "component", "ingress", "controller", ControllerName)
	c.poke()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-c.changed:
			c.rebuild(ctx)
			c.synced.Store(true)
		}
	}
}

func typeNames[T comparable](synced map[T]bool) map[string]bool {
	out := make(map[string]bool, len(synced))
	for t, ok := range synced {
		out[fmt.Sprint(t)] = ok
	}
	return out
}

func (c *Controller) rebuild(ctx context.Context) {
	all, err := c.ingresses.List(labels.Everything())
	if err != nil { // a lister over a synced cache does not fail
		klog.ErrorS(err, "List Ingresses", "component", "ingress")
		return
	}
	classes, _ := c.classes.List(labels.Everything())
	served := Served(all, classes)
	table, problems := BuildTable(served, func(ns, name string) (*corev1.Service, error) {
		return c.services.Services(ns).Get(name)
	})
	certs, certProblems := BuildCerts(served, func(ns, name string) (*corev1.Secret, error) {
		return c.secrets.Secrets(ns).Get(name)
	}, c.cfg.DefaultCert)
	c.table.Store(table)
	c.certs.Store(certs)
	for _, p := range append(problems, certProblems...) {
		klog.InfoS("Ingress part not served", "component", "ingress", "ingress", p.Ingress, "reason", p.Err.Error())
	}
	klog.V(2).InfoS("Routing table rebuilt", "component", "ingress", "ingresses", len(served))
	c.publishStatus(ctx, served)
}

// Served keeps the Ingresses of an IngressClass this controller handles:
// named by spec.ingressClassName or the legacy annotation, or naming none
// while one of ours is the cluster's default class.
func Served(ingresses []*networkingv1.Ingress, classes []*networkingv1.IngressClass) []*networkingv1.Ingress {
	ours := map[string]bool{}
	defaultIsOurs := false
	for _, cl := range classes {
		if cl.Spec.Controller != ControllerName {
			continue
		}
		ours[cl.Name] = true
		if cl.Annotations[networkingv1.AnnotationIsDefaultIngressClass] == "true" {
			defaultIsOurs = true
		}
	}
	return slices.DeleteFunc(slices.Clone(ingresses), func(ing *networkingv1.Ingress) bool {
		name := ing.Annotations[legacyClassAnnotation]
		if ing.Spec.IngressClassName != nil {
			name = *ing.Spec.IngressClassName
		}
		if name == "" {
			return !defaultIsOurs
		}
		return !ours[name]
	})
}

// publishStatus writes the publish Service's load-balancer addresses into
// the served Ingresses whose status differs.
func (c *Controller) publishStatus(ctx context.Context, served []*networkingv1.Ingress) {
	ns, name, ok := strings.Cut(c.cfg.PublishService, "/")
	if !ok {
		return
	}
	svc, err := c.services.Services(ns).Get(name)
	if err != nil {
		klog.V(2).InfoS("Publish service not found yet", "component", "ingress", "service", c.cfg.PublishService)
		return
	}
	var want []networkingv1.IngressLoadBalancerIngress
	for _, lb := range svc.Status.LoadBalancer.Ingress {
		want = append(want, networkingv1.IngressLoadBalancerIngress{IP: lb.IP, Hostname: lb.Hostname})
	}
	failed := false
	for _, ing := range served {
		if equality.Semantic.DeepEqual(ing.Status.LoadBalancer.Ingress, want) {
			continue
		}
		update := ing.DeepCopy()
		update.Status.LoadBalancer.Ingress = want
		if _, err := c.cfg.Client.NetworkingV1().Ingresses(ing.Namespace).UpdateStatus(ctx, update, metav1.UpdateOptions{}); err != nil {
			// A conflict means a newer version is on its way through the
			// informer, whose event brings another rebuild.
			klog.InfoS("Update Ingress status", "component", "ingress", "ingress", ing.Namespace+"/"+ing.Name, "err", err)
			failed = true
		}
	}
	if failed { // other errors get another try even if nothing changes
		time.AfterFunc(5*time.Second, c.poke)
	}
}
