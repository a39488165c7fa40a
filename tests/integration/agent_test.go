//go:build integration

package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"regente.io/regente/pkg/killall"
	"regente.io/regente/pkg/ociarchive"
)

// newNode prepares a server with its agent, with the given image archives
// already in its images dir, and registers a cleanup that removes every
// pod, stops regente, and leaves no shim, container or mount behind.
func newNode(t *testing.T, bin string, archives map[string][]byte, extra ...string) *server {
	t.Helper()
	s := newProcess(t, bin, extra...)
	imagesDir := filepath.Join(s.dataDir, "agent", "images")
	if err := os.MkdirAll(imagesDir, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, data := range archives {
		if err := os.WriteFile(filepath.Join(imagesDir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { cleanupNode(t, s) })
	return s
}

func cleanupNode(t *testing.T, s *server) {
	if s.cmd != nil && s.cmd.ProcessState == nil {
		s.kubectlErr("delete", "deployments,pods", "--all", "--all-namespaces", "--grace-period=1", "--wait=true", "--timeout=60s")
		s.stop()
	}
	// Shims and containers outlive regente by design: end them.
	killall.Node(s.dataDir, "/run/regente")
}

// busyboxImage builds a test image from Debian's busybox-static with our
// own OCI writer: nothing is downloaded.
func busyboxImage(t *testing.T, name string) []byte {
	t.Helper()
	path, err := exec.LookPath("busybox")
	if err != nil {
		t.Fatal("busybox not found: install Debian's busybox-static")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	files := []ociarchive.File{{Path: "/bin/busybox", Mode: 0o755, Data: data}}
	// The applets kubectl cp and the tests call by name.
	for _, applet := range []string{"sh", "tar", "cat", "echo", "sleep", "nc", "tail", "printf", "httpd", "mkdir", "ls"} {
		files = append(files, ociarchive.File{Path: "/bin/" + applet, Link: "busybox"})
	}
	out := filepath.Join(t.TempDir(), "image.tar")
	if err := ociarchive.WriteFile(out, ociarchive.Image{Name: name, Entrypoint: []string{"/bin/busybox"},
		Env: []string{"PATH=/bin"}, Files: files}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(out)
	return b
}

func (s *server) waitNodeReady(t *testing.T) {
	t.Helper()
	eventually(t, 120*time.Second, "node Ready", func() error {
		out, err := s.kubectlErr("get", "nodes", "-o", `jsonpath={.items[*].status.conditions[?(@.type=="Ready")].status}`)
		if err != nil {
			return err
		}
		if strings.TrimSpace(out) != "True" {
			return fmt.Errorf("Ready=%q", out)
		}
		return nil
	})
}

// TestAgent runs the node on this machine with no registry: images come
// from the images dir and the embedded payload.
func TestAgent(t *testing.T) {
	bin := requirements(t)
	const image = "regente.invalid/busybox:test"
	s := newNode(t, bin, map[string][]byte{
		"busybox.tar": busyboxImage(t, image),
		"corrupt.tar": []byte("this is not an image archive"),
	})
	s.start()
	s.waitNodeReady(t)

	t.Run("images dir imported, corrupt archive reported by name", func(t *testing.T) {
		log := s.log.String()
		if !strings.Contains(log, "Skipping image archive") || !strings.Contains(log, "corrupt.tar") {
			t.Errorf("no report naming corrupt.tar:\n%s", tail(log))
		}
		out, err := exec.Command(bin, "ctr", "images", "ls").CombinedOutput()
		if err != nil {
			t.Fatalf("regente ctr images ls: %v: %s", err, out)
		}
		for _, want := range []string{image, "regente.invalid/pause:1", "io.cri-containerd.pinned=pinned"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("ctr images ls lacks %q:\n%s", want, out)
			}
		}
	})

	t.Run("archive dropped in later is imported", func(t *testing.T) {
		const late = "regente.invalid/busybox:late"
		// Written elsewhere and renamed in, as a careful user (or install script) would.
		tmp := filepath.Join(s.dataDir, "agent", "late.tar.tmp")
		os.WriteFile(tmp, busyboxImage(t, late), 0o600)
		if err := os.Rename(tmp, filepath.Join(s.dataDir, "agent", "images", "late.tar")); err != nil {
			t.Fatal(err)
		}
		eventually(t, 30*time.Second, "late image in containerd", func() error {
			out, err := exec.Command(bin, "ctr", "images", "ls", "-q").CombinedOutput()
			if err != nil || !strings.Contains(string(out), late) {
				return fmt.Errorf("%s %v", out, err)
			}
			return nil
		})
	})

	s.apply(`apiVersion: apps/v1
kind: Deployment
metadata: {name: marker}
spec:
  replicas: 1
  selector: {matchLabels: {app: marker}}
  template:
    metadata: {labels: {app: marker}}
    spec:
      containers:
      - name: main
        image: ` + image + `
        imagePullPolicy: Never
        command: ["/bin/busybox", "sh", "-c", "echo started; /bin/busybox sleep 86400; echo done", "regente-test-marker"]
`)
	s.kubectl("rollout", "status", "deployment/marker", "--timeout=120s")

	t.Run("crictl sees the pod", func(t *testing.T) {
		cmd := exec.Command(bin, "crictl", "ps", "--name", "main", "-o", "json")
		cmd.Env = append(os.Environ(), "REGENTE_DATA_DIR="+s.dataDir)
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), `"io.kubernetes.pod.name"`) || !strings.Contains(string(out), "marker-") {
			t.Fatalf("regente crictl ps: %v: %s", err, out)
		}
	})

	t.Run("logs and exec", func(t *testing.T) {
		if out := s.kubectl("logs", "deployment/marker"); !strings.Contains(out, "started") {
			t.Fatalf("logs = %q", out)
		}
		if out := s.kubectl("exec", "deployment/marker", "--", "/bin/busybox", "echo", "exec-works"); strings.TrimSpace(out) != "exec-works" {
			t.Fatalf("exec = %q", out)
		}
		ip := s.kubectl("get", "pods", "-l", "app=marker", "-o", "jsonpath={.items[0].status.podIP}")
		if !strings.HasPrefix(ip, "10.42.") {
			t.Fatalf("pod IP %q not in the cluster CIDR", ip)
		}
	})

	testWorkloads(t, s, image)

	t.Run("restart keeps the container running", func(t *testing.T) {
		before := markerPID(t)
		if code, took := s.stop(); code != 0 {
			t.Fatalf("stop exit code %d after %s:\n%s", code, took, tail(s.log.String()))
		}
		if pid := markerPID(t); pid != before {
			t.Fatalf("container PID %d changed to %d while regente was down", before, pid)
		}
		s.start()
		s.waitNodeReady(t)
		time.Sleep(5 * time.Second) // let the kubelet resync the pod
		if pid := markerPID(t); pid != before {
			t.Fatalf("container PID %d changed to %d after restart", before, pid)
		}
		if n := s.kubectl("get", "pods", "-l", "app=marker", "-o", "jsonpath={.items[0].status.containerStatuses[0].restartCount}"); n != "0" {
			t.Fatalf("restartCount = %s", n)
		}
	})
}

// markerPID finds the test container's process on the host.
func markerPID(t *testing.T) int {
	t.Helper()
	out, err := exec.Command("pgrep", "-f", "regente-test-marker").Output()
	fields := strings.Fields(string(out))
	if err != nil || len(fields) != 1 {
		t.Fatalf("want one marker process, pgrep: %q %v", out, err)
	}
	pid, _ := strconv.Atoi(fields[0])
	return pid
}
