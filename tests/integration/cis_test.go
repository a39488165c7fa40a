//go:build integration

package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"regente.io/regente/pkg/kubelet"
)

// cisControls are the control numbers `check-config --cis` reports.
var cisControls = []string{"1.1.12", "1.1.19/20", "1.1.13-18", "1.2.1", "1.2.6-8", "1.2.15", "1.2.16", "1.2.17-20",
	"1.2.29-31", "1.3.7", "1.4.2", "2.1-2.2", "4.1.1-10", "4.2.1-3", "4.2.4", "4.2.6", "5.2"}

// cisCheck runs `regente check-config --cis` against s and returns its
// exit code, its output and each control's status.
func cisCheck(t *testing.T, s *server) (int, string, map[string]string) {
	t.Helper()
	code, out := runBinary(t, s.bin, "check-config", "--cis", "--data-dir", s.dataDir, "--config", filepath.Join(filepath.Dir(s.dataDir), "config.yaml"))
	status := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^(OK|WARN|FAIL)\s+(\S+)\s`).FindAllStringSubmatch(out, -1) {
		status[m[2]] = m[1]
	}
	for _, id := range cisControls {
		if status[id] == "" {
			t.Errorf("check-config --cis reports nothing for control %s:\n%s", id, out)
		}
	}
	return code, out, status
}

// TestCISProfile starts a node with --profile cis, on embedded etcd so
// that etcd's control is probed too, and checks that the live CIS
// self-check passes every control, that ordinary workloads that
// meet the restricted Pod Security Standard still run, and that a
// privileged pod outside kube-system is refused.
func TestCISProfile(t *testing.T) {
	bin := requirements(t)
	// The profile's kubelet refuses to set the kernel tunables it needs;
	// every other kubelet here sets them at start, so set them as the
	// fix regente prints says, whichever test ran first.
	for _, k := range kubelet.KernelDefaults() {
		if err := os.WriteFile(filepath.Join("/proc/sys", k.Name), []byte(strconv.Itoa(k.Value)), 0o644); err != nil {
			t.Fatalf("set %s: %v", k.Key(), err)
		}
	}
	const image = "regente.invalid/busybox:test"
	s := newNode(t, bin, map[string][]byte{"busybox.tar": busyboxImage(t, image)}, "--profile=cis", "--cluster-init")
	s.start()
	s.waitNodeReady(t)

	code, out, status := cisCheck(t, s)
	t.Logf("check-config --cis:\n%s", out)
	if !strings.Contains(out, "etcd requires client certificates: a request to 127.0.0.1:2379 without a client certificate failed") {
		t.Errorf("etcd's client port was not probed:\n%s", out)
	}
	for id, st := range status {
		if st != "OK" {
			t.Errorf("control %s: %s", id, st)
		}
	}
	if code != 0 {
		t.Errorf("check-config --cis exited %d with every control passing", code)
	}

	// The add-ons run in kube-system, exempt; a pod that meets the
	// restricted standard runs in default.
	s.apply(fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: restricted, namespace: default}
spec:
  securityContext: {runAsNonRoot: true, runAsUser: 1000, seccompProfile: {type: RuntimeDefault}}
  containers:
  - name: c
    image: %s
    imagePullPolicy: Never
    command: [sleep, "3600"]
    securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
`, image))
	eventually(t, 90*time.Second, "the restricted pod Running", func() error {
		phase := s.kubectl("get", "pod", "restricted", "-o", "jsonpath={.status.phase}")
		if phase != "Running" {
			return fmt.Errorf("phase %q", phase)
		}
		return nil
	})
	_, err := s.kubectlErr("run", "privileged", "--image="+image, "--image-pull-policy=Never", `--overrides={"spec":{"containers":[{"name":"privileged","image":"`+image+`","securityContext":{"privileged":true}}]}}`)
	if err == nil || !strings.Contains(err.Error(), "violates PodSecurity") {
		t.Errorf("a privileged pod in default: got %v, want a PodSecurity refusal", err)
	}
	if info, err := os.Stat(filepath.Join(s.dataDir, "server", "logs", "audit.log")); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("audit log: %v, mode %v; want a 0600 file", err, info)
	}
}
