package servicelb

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	appsv1listers "k8s.io/client-go/listers/apps/v1"
	corev1listers "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"regente.io/regente/pkg/component"
	"regente.io/regente/pkg/kubeconfig"
)

const (
	namespace      = metav1.NamespaceSystem
	labelName      = "svccontroller.regente.io/svcname"
	labelNamespace = "svccontroller.regente.io/svcnamespace"
	fieldManager   = "regente-servicelb"
	// resync re-delivers every object now and then, a safety net for a
	// missed event.
	resync = 10 * time.Minute
	// retryAfter spaces out attempts after a failed pass.
	retryAfter = 2 * time.Second
)

// ServiceLB is the component.
type ServiceLB struct {
	component.Runner
	kubeconfig string
	image      string
}

var (
	_ component.Component = (*ServiceLB)(nil)
	_ component.Failer    = (*ServiceLB)(nil)
)

// New returns the component; image is the svclb image reference.
func New(kubeconfig, image string) *ServiceLB {
	return &ServiceLB{kubeconfig: kubeconfig, image: image}
}

// Name implements component.Component.
func (s *ServiceLB) Name() string { return "servicelb" }

// Start reconciles until Stop.
func (s *ServiceLB) Start(ctx context.Context) error {
	_, client, err := kubeconfig.Client(s.kubeconfig)
	if err != nil {
		return err
	}
	logger := klog.FromContext(ctx).WithValues("component", "servicelb")
	return s.Runner.Start(klog.NewContext(ctx, logger), func(ctx context.Context) (func() error, error) {
		return func() error { return s.run(ctx, client) }, nil
	})
}

// run reconciles every LoadBalancer Service whenever a Service, one of its
// relay DaemonSets or pods, or a node changes; a failed pass is retried.
func (s *ServiceLB) run(ctx context.Context, client kubernetes.Interface) error {
	all := informers.NewSharedInformerFactory(client, resync)
	ours := informers.NewSharedInformerFactoryWithOptions(client, resync, informers.WithNamespace(namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = labelName }))
	l := listers{
		services:   all.Core().V1().Services().Lister(),
		nodes:      all.Core().V1().Nodes().Lister(),
		daemonSets: ours.Apps().V1().DaemonSets().Lister(),
		pods:       ours.Core().V1().Pods().Lister(),
	}
	changed := make(chan struct{}, 1)
	notify := func(any) {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	handler := cache.ResourceEventHandlerFuncs{AddFunc: notify, UpdateFunc: func(_, obj any) { notify(obj) }, DeleteFunc: notify}
	for _, informer := range []cache.SharedIndexInformer{
		all.Core().V1().Services().Informer(), all.Core().V1().Nodes().Informer(),
		ours.Apps().V1().DaemonSets().Informer(), ours.Core().V1().Pods().Informer(),
	} {
		if _, err := informer.AddEventHandler(handler); err != nil {
			return err
		}
	}
	all.Start(ctx.Done())
	ours.Start(ctx.Done())
	defer all.Shutdown()
	defer ours.Shutdown()
	all.WaitForCacheSync(ctx.Done())
	ours.WaitForCacheSync(ctx.Done())
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		}
		if err := s.reconcile(ctx, client, l); err != nil && ctx.Err() == nil {
			klog.FromContext(ctx).Error(err, "Cannot reconcile LoadBalancer Services; retrying")
			time.AfterFunc(retryAfter, func() { notify(nil) })
		}
	}
}

// listers read the informers' caches.
type listers struct {
	services   corev1listers.ServiceLister
	nodes      corev1listers.NodeLister
	daemonSets appsv1listers.DaemonSetLister
	pods       corev1listers.PodLister
}

func handled(svc *corev1.Service) bool {
	return svc.Spec.Type == corev1.ServiceTypeLoadBalancer && svc.Spec.LoadBalancerClass == nil && svc.Spec.ClusterIP != "" && svc.Spec.ClusterIP != corev1.ClusterIPNone
}

// daemonSetName is unique per Service (its UID) and, being also a label
// value, at most 63 characters.
func daemonSetName(svc *corev1.Service) string {
	name := svc.Name
	if len(name) > 40 {
		name = strings.TrimRight(name[:40], "-.")
	}
	return "svclb-" + name + "-" + string(svc.UID)[:8]
}

func (s *ServiceLB) reconcile(ctx context.Context, client kubernetes.Interface, l listers) error {
	services, err := l.services.List(labels.Everything())
	if err != nil {
		return err
	}
	wanted := map[string]bool{}
	for _, svc := range services {
		if !handled(svc) {
			continue
		}
		wanted[daemonSetName(svc)] = true
		if err := s.ensureDaemonSet(ctx, client, l, svc); err != nil {
			return fmt.Errorf("daemonset for %s/%s: %w", svc.Namespace, svc.Name, err)
		}
		if err := updateStatus(ctx, client, l, svc); err != nil {
			return fmt.Errorf("status of %s/%s: %w", svc.Namespace, svc.Name, err)
		}
	}
	sets, err := l.daemonSets.List(labels.Everything())
	if err != nil {
		return err
	}
	for _, ds := range sets {
		if !wanted[ds.Name] {
			if err := client.AppsV1().DaemonSets(namespace).Delete(ctx, ds.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				return err
			}
		}
	}
	return nil
}

// ensureDaemonSet applies svc's relay DaemonSet unless the cached one
// already carries this Service's spec (its ports and cluster IP), recorded
// in an annotation, so an event storm causes no writes.
func (s *ServiceLB) ensureDaemonSet(ctx context.Context, client kubernetes.Interface, l listers, svc *corev1.Service) error {
	fp := specAnnotation(svc, s.image)
	if ds, err := l.daemonSets.DaemonSets(namespace).Get(daemonSetName(svc)); err == nil && ds.Annotations[specKey] == fp {
		return nil
	}
	labels := map[string]string{labelName: svc.Name, labelNamespace: svc.Namespace, "app": daemonSetName(svc)}
	pod := corev1ac.PodSpec().
		WithAutomountServiceAccountToken(false).
		WithTolerations(corev1ac.Toleration().WithOperator(corev1.TolerationOpExists))
	for _, p := range svc.Spec.Ports {
		proto := p.Protocol
		if proto == "" {
			proto = corev1.ProtocolTCP
		}
		port := strconv.Itoa(int(p.Port))
		pod.WithContainers(corev1ac.Container().
			WithName("lb-"+strings.ToLower(string(proto))+"-"+port).
			WithImage(s.image).
			WithImagePullPolicy(corev1.PullIfNotPresent).
			WithEnv(
				corev1ac.EnvVar().WithName("SRC_PORT").WithValue(port),
				corev1ac.EnvVar().WithName("DEST_PROTO").WithValue(string(proto)),
				corev1ac.EnvVar().WithName("DEST_IP").WithValue(svc.Spec.ClusterIP),
				corev1ac.EnvVar().WithName("DEST_PORT").WithValue(port),
			).
			WithPorts(corev1ac.ContainerPort().WithName("lb-" + port).WithContainerPort(p.Port).WithHostPort(p.Port).WithProtocol(proto)).
			WithSecurityContext(corev1ac.SecurityContext().
				WithRunAsNonRoot(true).WithRunAsUser(65534).WithAllowPrivilegeEscalation(false).
				WithReadOnlyRootFilesystem(true).
				WithCapabilities(corev1ac.Capabilities().WithDrop("ALL"))))
	}
	ds := appsv1ac.DaemonSet(daemonSetName(svc), namespace).
		WithLabels(labels).
		WithAnnotations(map[string]string{specKey: fp}).
		WithSpec(appsv1ac.DaemonSetSpec().
			WithSelector(metav1ac.LabelSelector().WithMatchLabels(map[string]string{"app": daemonSetName(svc)})).
			WithTemplate(corev1ac.PodTemplateSpec().WithLabels(labels).WithSpec(pod)))
	_, err := client.AppsV1().DaemonSets(namespace).Apply(ctx, ds, metav1.ApplyOptions{FieldManager: fieldManager, Force: true})
	return err
}

// updateStatus sets the Service's ingress to the InternalIPs of the nodes
// whose svclb pod is Ready, in a stable order.
func updateStatus(ctx context.Context, client kubernetes.Interface, l listers, svc *corev1.Service) error {
	pods, err := l.pods.Pods(namespace).List(labels.SelectorFromSet(labels.Set{"app": daemonSetName(svc)}))
	if err != nil {
		return err
	}
	var ips []string
	for _, p := range pods {
		if !podReady(p) || p.Spec.NodeName == "" {
			continue
		}
		node, err := l.nodes.Get(p.Spec.NodeName)
		if err != nil {
			continue
		}
		for _, a := range node.Status.Addresses {
			if a.Type == corev1.NodeInternalIP {
				ips = append(ips, a.Address)
			}
		}
	}
	slices.Sort(ips)
	var current []string
	for _, in := range svc.Status.LoadBalancer.Ingress {
		current = append(current, in.IP)
	}
	if slices.Equal(ips, current) {
		return nil
	}
	proxy := corev1.LoadBalancerIPModeProxy
	svc = svc.DeepCopy()
	svc.Status.LoadBalancer.Ingress = nil
	for _, ip := range ips {
		// Proxy: traffic goes through the svclb pods, kube-proxy must not
		// take the node's own address for the Service.
		svc.Status.LoadBalancer.Ingress = append(svc.Status.LoadBalancer.Ingress, corev1.LoadBalancerIngress{IP: ip, IPMode: &proxy})
	}
	_, err = client.CoreV1().Services(svc.Namespace).UpdateStatus(ctx, svc, metav1.UpdateOptions{})
	return err
}

// specKey annotates a relay DaemonSet with what it was made from.
const specKey = "svccontroller.regente.io/spec"

// specAnnotation is what a relay DaemonSet depends on: the image, the
// cluster IP and the ports.
func specAnnotation(svc *corev1.Service, image string) string {
	parts := []string{image, svc.Spec.ClusterIP}
	for _, p := range svc.Spec.Ports {
		parts = append(parts, fmt.Sprintf("%s/%d", p.Protocol, p.Port))
	}
	return strings.Join(parts, ",")
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// Cleanup is what runs instead when --disable servicelb: it deletes the
// DaemonSets an earlier run made, so disabling removes the add-on.
func Cleanup(kubeconfigPath string) component.Component {
	return component.Func("servicelb-cleanup", func(ctx context.Context) error {
		_, client, err := kubeconfig.Client(kubeconfigPath)
		if err != nil {
			return err
		}
		err = client.AppsV1().DaemonSets(namespace).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: labelName})
		if err != nil {
			return fmt.Errorf("delete the service load balancer's DaemonSets: %w", err)
		}
		return nil
	})
}
