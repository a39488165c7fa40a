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
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"regente.io/regente/pkg/component"
	"regente.io/regente/pkg/kubeconfig"
)

const (
	namespace      = metav1.NamespaceSystem
	labelName      = "svccontroller.regente.io/svcname"
	labelNamespace = "svccontroller.regente.io/svcnamespace"
	fieldManager   = "regente-servicelb"
	// resync is how often every LoadBalancer Service is reconciled; a
	// change shows within that time.
	resync = 2 * time.Second
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

// Init implements component.Component.
func (s *ServiceLB) Init(context.Context) error { return nil }

// Start reconciles until Stop.
func (s *ServiceLB) Start(ctx context.Context) error {
	_, client, err := kubeconfig.Client(s.kubeconfig)
	if err != nil {
		return err
	}
	logger := klog.FromContext(ctx).WithValues("component", "servicelb")
	return s.Runner.Start(klog.NewContext(ctx, logger), func(ctx context.Context) (func() error, error) {
		return func() error {
			for {
				if err := s.reconcile(ctx, client); err != nil && ctx.Err() == nil {
					klog.FromContext(ctx).Error(err, "Cannot reconcile LoadBalancer Services; retrying")
				}
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(resync):
				}
			}
		}, nil
	})
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

func (s *ServiceLB) reconcile(ctx context.Context, client kubernetes.Interface) error {
	services, err := client.CoreV1().Services(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	wanted := map[string]bool{}
	for i := range services.Items {
		svc := &services.Items[i]
		if !handled(svc) {
			continue
		}
		wanted[daemonSetName(svc)] = true
		if err := s.ensureDaemonSet(ctx, client, svc); err != nil {
			return fmt.Errorf("daemonset for %s/%s: %w", svc.Namespace, svc.Name, err)
		}
		if err := updateStatus(ctx, client, svc); err != nil {
			return fmt.Errorf("status of %s/%s: %w", svc.Namespace, svc.Name, err)
		}
	}
	sets, err := client.AppsV1().DaemonSets(namespace).List(ctx, metav1.ListOptions{LabelSelector: labelName})
	if err != nil {
		return err
	}
	for _, ds := range sets.Items {
		if !wanted[ds.Name] {
			if err := client.AppsV1().DaemonSets(namespace).Delete(ctx, ds.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				return err
			}
		}
	}
	return nil
}

func (s *ServiceLB) ensureDaemonSet(ctx context.Context, client kubernetes.Interface, svc *corev1.Service) error {
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
		WithSpec(appsv1ac.DaemonSetSpec().
			WithSelector(metav1ac.LabelSelector().WithMatchLabels(map[string]string{"app": daemonSetName(svc)})).
			WithTemplate(corev1ac.PodTemplateSpec().WithLabels(labels).WithSpec(pod)))
	_, err := client.AppsV1().DaemonSets(namespace).Apply(ctx, ds, metav1.ApplyOptions{FieldManager: fieldManager, Force: true})
	return err
}

// updateStatus sets the Service's ingress to the InternalIPs of the nodes
// whose svclb pod is Ready, in a stable order.
func updateStatus(ctx context.Context, client kubernetes.Interface, svc *corev1.Service) error {
	pods, err := client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: "app=" + daemonSetName(svc)})
	if err != nil {
		return err
	}
	var ips []string
	for _, p := range pods.Items {
		if !podReady(&p) || p.Spec.NodeName == "" {
			continue
		}
		node, err := client.CoreV1().Nodes().Get(ctx, p.Spec.NodeName, metav1.GetOptions{})
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
