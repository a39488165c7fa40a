//go:build integration

package integration

import (
	"strings"
	"testing"
	"time"
)

// TestDisableComponents starts a control plane with neither scheduler,
// controller-manager nor cloud node controller, as a server that runs only
// some parts would: the API serves, nothing schedules a pod, nothing makes
// a Deployment's ReplicaSet, and the log says what is off.
func TestDisableComponents(t *testing.T) {
	bin := requirements(t)
	s := newServer(t, bin, "--disable-scheduler", "--disable-controller-manager", "--disable-cloud-controller")
	s.start()
	s.kubectl("create", "deployment", "web", "--image=regente.invalid/none:1")
	// The controller-manager would have made the namespace's default
	// ServiceAccount, which admission wants for a pod.
	s.kubectl("create", "serviceaccount", "default")
	s.kubectl("run", "lone", "--image=regente.invalid/none:1", "--restart=Never")
	// Both would be acted on within a second or two by a running
	// controller-manager and scheduler.
	time.Sleep(10 * time.Second)
	if out := s.kubectl("get", "replicasets", "-o", "name"); strings.TrimSpace(out) != "" {
		t.Errorf("ReplicaSets exist without a controller-manager: %s", out)
	}
	if out := s.kubectl("get", "pod", "lone", "-o", "jsonpath={.spec.nodeName}{.status.conditions}"); strings.TrimSpace(out) != "" {
		t.Errorf("the pod was acted on without a scheduler: %q", out)
	}
	log := s.log.String()
	for _, want := range []string{`"scheduler is disabled"`, `"controller-manager is disabled"`, `"cloud-node-controller is disabled"`} {
		if !strings.Contains(log, want) {
			t.Errorf("the log lacks %s:\n%s", want, tail(log))
		}
	}
}
