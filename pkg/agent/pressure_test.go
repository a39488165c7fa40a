package agent

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestPressureChanges(t *testing.T) {
	condition := func(kind corev1.NodeConditionType, status corev1.ConditionStatus) corev1.NodeCondition {
		return corev1.NodeCondition{Type: kind, Status: status, Message: "kubelet says " + string(status)}
	}
	under := map[corev1.NodeConditionType]bool{}
	healthy := []corev1.NodeCondition{
		condition(corev1.NodeReady, corev1.ConditionTrue),
		condition(corev1.NodeDiskPressure, corev1.ConditionFalse),
		condition(corev1.NodeMemoryPressure, corev1.ConditionFalse),
	}
	if got := pressureChanges(under, healthy); len(got) != 0 {
		t.Fatalf("a healthy node reported %v", got)
	}
	full := []corev1.NodeCondition{
		condition(corev1.NodeReady, corev1.ConditionFalse), // not a pressure
		condition(corev1.NodeDiskPressure, corev1.ConditionTrue),
		condition(corev1.NodeMemoryPressure, corev1.ConditionFalse),
	}
	got := pressureChanges(under, full)
	if len(got) != 1 || got[0].condition != corev1.NodeDiskPressure || !got[0].began || got[0].message != "kubelet says True" {
		t.Fatalf("disk pressure beginning: got %+v", got)
	}
	if got := pressureChanges(under, full); len(got) != 0 {
		t.Fatalf("the same pressure was reported twice: %+v", got)
	}
	got = pressureChanges(under, healthy)
	if len(got) != 1 || got[0].condition != corev1.NodeDiskPressure || got[0].began {
		t.Fatalf("disk pressure ending: got %+v", got)
	}
}

func TestPressureFixNamesTheFreeSpace(t *testing.T) {
	dir := t.TempDir()
	fix := pressureFix(corev1.NodeDiskPressure, dir)
	for _, want := range []string{dir, " GiB of ", "--kubelet-arg=eviction-hard="} {
		if !strings.Contains(fix, want) {
			t.Errorf("disk pressure fix %q does not name %q", fix, want)
		}
	}
}
