package nodehosts

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func node(name string, addrs ...corev1.NodeAddress) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: corev1.NodeStatus{Addresses: addrs}}
}

func TestRender(t *testing.T) {
	got := Render([]*corev1.Node{
		node("b", corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: "10.0.0.2"}, corev1.NodeAddress{Type: corev1.NodeHostName, Address: "b"}),
		node("a", corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: "10.0.0.1"}, corev1.NodeAddress{Type: corev1.NodeExternalIP, Address: "203.0.113.1"}),
		node("c"),
	})
	if want := "10.0.0.1 a\n10.0.0.2 b\n"; got != want {
		t.Errorf("Render = %q, want %q", got, want)
	}
	if got := Render(nil); got != "" {
		t.Errorf("Render(nil) = %q", got)
	}
}
