package servicelb

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestHandled(t *testing.T) {
	class := "example.com/other-lb"
	lb := func(edit func(*corev1.Service)) *corev1.Service {
		s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", UID: "0123456789abcdef"},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, ClusterIP: "10.43.0.20"}}
		edit(s)
		return s
	}
	for name, c := range map[string]struct {
		svc  *corev1.Service
		want bool
	}{
		"LoadBalancer":          {lb(func(*corev1.Service) {}), true},
		"another LB's class":    {lb(func(s *corev1.Service) { s.Spec.LoadBalancerClass = &class }), false},
		"ClusterIP":             {lb(func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeClusterIP }), false},
		"headless":              {lb(func(s *corev1.Service) { s.Spec.ClusterIP = corev1.ClusterIPNone }), false},
		"no ClusterIP assigned": {lb(func(s *corev1.Service) { s.Spec.ClusterIP = "" }), false},
	} {
		if got := handled(c.svc); got != c.want {
			t.Errorf("%s: handled = %t, want %t", name, got, c.want)
		}
	}
	if got := daemonSetName(lb(func(*corev1.Service) {})); got != "svclb-web-01234567" {
		t.Errorf("daemonSetName = %s", got)
	}
	long := lb(func(s *corev1.Service) { s.Name = strings.Repeat("a", 63) })
	if got := daemonSetName(long); len(got) > 63 {
		t.Errorf("daemonSetName of a 63-character Service is %d characters", len(got))
	}
}
