package ingress

import (
	"errors"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// services is a fake Service lookup: name → ClusterIP, ports 80 ("http")
// and 8443 ("https").
func services(ips map[string]string) Services {
	return func(ns, name string) (*corev1.Service, error) {
		ip, ok := ips[ns+"/"+name]
		if !ok {
			return nil, errors.New("not found")
		}
		svc := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: corev1.ServiceSpec{ClusterIP: ip, Ports: []corev1.ServicePort{
				{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)},
				{Name: "https", Port: 8443},
			}},
		}
		if ip == "external" {
			svc.Spec = corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "db.example.net"}
		}
		return svc, nil
	}
}

type path struct {
	path     string
	pathType networkingv1.PathType
	service  string
	port     networkingv1.ServiceBackendPort
}

func ingressOf(name string, age time.Duration, host string, paths ...path) *networkingv1.Ingress {
	var hp []networkingv1.HTTPIngressPath
	for _, p := range paths {
		hp = append(hp, networkingv1.HTTPIngressPath{Path: p.path, PathType: ptr.To(p.pathType), Backend: networkingv1.IngressBackend{
			Service: &networkingv1.IngressServiceBackend{Name: p.service, Port: p.port},
		}})
	}
	return &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, CreationTimestamp: metav1.NewTime(time.Unix(1e9, 0).Add(-age))},
		Spec: networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{{
			Host: host, IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: hp}},
		}}},
	}
}

var port80 = networkingv1.ServiceBackendPort{Number: 80}

func TestLookup(t *testing.T) {
	svcs := services(map[string]string{
		"default/web": "10.43.0.10", "default/api": "10.43.0.11", "default/v2": "10.43.0.12",
		"default/wild": "10.43.0.13", "default/any": "10.43.0.14", "default/old": "10.43.0.15",
		"default/fallback": "10.43.0.16", "default/db": "external", "default/ipv6": "fd00::10",
	})
	prefix, exact := networkingv1.PathTypePrefix, networkingv1.PathTypeExact
	withDefault := ingressOf("default-backend", time.Hour, "")
	withDefault.Spec.Rules = nil
	withDefault.Spec.DefaultBackend = &networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "fallback", Port: port80}}
	table, problems := BuildTable([]*networkingv1.Ingress{
		ingressOf("app", time.Minute, "app.example.com",
			path{"/", prefix, "web", port80},
			path{"/api", prefix, "api", networkingv1.ServiceBackendPort{Name: "http"}},
			path{"/api/v2", prefix, "v2", port80},
			path{"/api/v2", exact, "api", networkingv1.ServiceBackendPort{Name: "https"}}),
		// Younger than app: its "/" for the same host loses.
		ingressOf("young", 0, "APP.example.com", path{"/", prefix, "old", port80}),
		ingressOf("wild", time.Minute, "*.example.com", path{"/", prefix, "wild", port80}),
		ingressOf("any", time.Minute, "", path{"/any", prefix, "any", port80}),
		ingressOf("external", time.Minute, "db.local", path{"/", prefix, "db", port80}),
		ingressOf("v6", time.Minute, "v6.local", path{"/", prefix, "ipv6", port80}),
		ingressOf("broken", time.Minute, "broken.local",
			path{"/", prefix, "missing", port80},
			path{"/named", prefix, "web", networkingv1.ServiceBackendPort{Name: "grpc"}}),
		withDefault,
	}, svcs)
	if len(problems) != 2 {
		t.Errorf("problems %v, want the missing Service and the missing port name", problems)
	}
	for _, tc := range []struct{ host, path, want string }{
		{"app.example.com", "/", "http://10.43.0.10:80"},
		{"app.example.com", "/index.html", "http://10.43.0.10:80"},
		{"App.Example.Com.", "/", "http://10.43.0.10:80"},
		{"app.example.com", "/api", "http://10.43.0.11:80"},
		{"app.example.com", "/api/", "http://10.43.0.11:80"},
		{"app.example.com", "/apis", "http://10.43.0.10:80"}, // Prefix matches whole elements
		{"app.example.com", "/api/v2", "http://10.43.0.11:8443"},
		{"app.example.com", "/api/v2/x", "http://10.43.0.12:80"},
		{"other.example.com", "/", "http://10.43.0.13:80"},
		{"a.b.example.com", "/", "http://10.43.0.16:80"}, // a wildcard is one label deep
		{"app.example.com", "/any", "http://10.43.0.10:80"},
		{"nohost.local", "/any/thing", "http://10.43.0.14:80"},
		{"nohost.local", "/", "http://10.43.0.16:80"},
		{"db.local", "/", "http://db.example.net:80"},
		{"v6.local", "/", "http://[fd00::10]:80"},
		{"broken.local", "/", "http://10.43.0.16:80"},
	} {
		got, ok := table.Lookup(tc.host, tc.path)
		if !ok || got.String() != tc.want {
			t.Errorf("Lookup(%q, %q) = %v, %v; want %s", tc.host, tc.path, got, ok, tc.want)
		}
	}

	bare, _ := BuildTable([]*networkingv1.Ingress{ingressOf("app", 0, "app.example.com", path{"/", prefix, "web", port80})}, svcs)
	if got, ok := bare.Lookup("other.example.com", "/"); ok {
		t.Errorf("a host without rules or default backend routed to %v", got)
	}
}

func TestServed(t *testing.T) {
	class := func(name, controller string, isDefault bool) *networkingv1.IngressClass {
		cl := &networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: networkingv1.IngressClassSpec{Controller: controller}}
		if isDefault {
			cl.Annotations = map[string]string{networkingv1.AnnotationIsDefaultIngressClass: "true"}
		}
		return cl
	}
	named := func(name, class, annotation string) *networkingv1.Ingress {
		ing := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Name: name}}
		if class != "" {
			ing.Spec.IngressClassName = ptr.To(class)
		}
		if annotation != "" {
			ing.Annotations = map[string]string{legacyClassAnnotation: annotation}
		}
		return ing
	}
	ingresses := []*networkingv1.Ingress{
		named("ours", "regente", ""), named("alias", "traefik", ""), named("legacy", "", "regente"),
		named("nginx", "nginx", ""), named("legacy-nginx", "", "nginx"), named("unclassed", "", ""),
		named("unknown-class", "gone", ""),
	}
	for _, tc := range []struct {
		name    string
		classes []*networkingv1.IngressClass
		want    []string
	}{
		{"ours is the default", []*networkingv1.IngressClass{
			class("regente", ControllerName, true), class("traefik", ControllerName, false), class("nginx", "k8s.io/ingress-nginx", false),
		}, []string{"ours", "alias", "legacy", "unclassed"}},
		{"another default", []*networkingv1.IngressClass{
			class("regente", ControllerName, false), class("nginx", "k8s.io/ingress-nginx", true),
		}, []string{"ours", "legacy"}},
		{"no classes", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, ing := range Served(ingresses, tc.classes) {
				got = append(got, ing.Name)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("served %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("served %v, want %v", got, tc.want)
				}
			}
		})
	}
}
