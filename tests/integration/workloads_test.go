//go:build integration

package integration

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testWorkloads runs the conformance-style checks of the agent issue on a
// node whose images dir holds image: Services through kube-proxy,
// port-forward, cp, volumes, cgroup limits and crash back-off.
func testWorkloads(t *testing.T, s *server, image string) {
	hostDir := t.TempDir()
	s.apply(fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: httpd
        image: %[1]s
        imagePullPolicy: Never
        command: ["/bin/sh", "-c", "mkdir -p /www && echo hello-web > /www/index.html && echo from-emptydir > /scratch/f && echo from-hostpath > /host/f && exec httpd -f -p 8080 -h /www"]
        resources:
          limits: {memory: 64Mi, cpu: 250m}
        volumeMounts:
        - {name: scratch, mountPath: /scratch}
        - {name: host, mountPath: /host}
      volumes:
      - {name: scratch, emptyDir: {}}
      - {name: host, hostPath: {path: %[2]q, type: Directory}}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Pod
metadata: {name: crasher}
spec:
  containers:
  - name: main
    image: %[1]s
    imagePullPolicy: Never
    command: ["/bin/sh", "-c", "echo crashing; exit 3"]
`, image, hostDir))
	s.kubectl("rollout", "status", "deployment/web", "--timeout=120s")

	t.Run("ClusterIP from another pod", func(t *testing.T) {
		ip := s.kubectl("get", "service", "web", "-o", "jsonpath={.spec.clusterIP}")
		eventually(t, 30*time.Second, "pod reaches the ClusterIP", func() error {
			// Debian's static busybox wget crashes; nc speaks plain HTTP/1.0.
			out, err := s.kubectlErr("exec", "deployment/marker", "--", "sh", "-c",
				`printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 3 `+ip+` 80 | tail -n 1`)
			if err != nil || strings.TrimSpace(out) != "hello-web" {
				return fmt.Errorf("%q %v", out, err)
			}
			return nil
		})
	})

	t.Run("ClusterIP from the host", func(t *testing.T) {
		ip := s.kubectl("get", "service", "web", "-o", "jsonpath={.spec.clusterIP}")
		eventually(t, 30*time.Second, "the host reaches the ClusterIP", func() error {
			return httpGetEquals("http://"+ip+"/", "hello-web")
		})
	})

	t.Run("NodePort on the host", func(t *testing.T) {
		port := s.kubectl("get", "service", "web", "-o", "jsonpath={.spec.ports[0].nodePort}")
		eventually(t, 30*time.Second, "NodePort answers on 127.0.0.1", func() error {
			return httpGetEquals("http://127.0.0.1:"+port+"/", "hello-web")
		})
	})

	t.Run("port-forward", func(t *testing.T) {
		local := freePort(t)
		cmd := exec.Command(filepath.Join(filepath.Dir(s.bin), "kubectl"), "port-forward", "deployment/web", fmt.Sprintf("%d:8080", local))
		cmd.Env = append(os.Environ(), "KUBECONFIG="+s.kubeconfig)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { cmd.Process.Kill(); cmd.Wait() }()
		eventually(t, 30*time.Second, "port-forward answers", func() error {
			return httpGetEquals(fmt.Sprintf("http://127.0.0.1:%d/", local), "hello-web")
		})
	})

	t.Run("cp both ways", func(t *testing.T) {
		src := filepath.Join(t.TempDir(), "in.txt")
		os.WriteFile(src, []byte("copied-in"), 0o644)
		pod := strings.TrimPrefix(s.kubectl("get", "pods", "-l", "app=web", "-o", "name"), "pod/")
		pod = strings.TrimSpace(pod)
		s.kubectl("cp", src, pod+":/www/in.txt")
		if out := s.kubectl("exec", pod, "--", "cat", "/www/in.txt"); out != "copied-in" {
			t.Fatalf("file in pod = %q", out)
		}
		dst := filepath.Join(t.TempDir(), "out.txt")
		s.kubectl("cp", pod+":/www/index.html", dst)
		if b, _ := os.ReadFile(dst); strings.TrimSpace(string(b)) != "hello-web" {
			t.Fatalf("file copied out = %q", b)
		}
	})

	t.Run("emptyDir and hostPath", func(t *testing.T) {
		if out := s.kubectl("exec", "deployment/web", "--", "cat", "/scratch/f"); strings.TrimSpace(out) != "from-emptydir" {
			t.Fatalf("emptyDir file = %q", out)
		}
		if b, err := os.ReadFile(filepath.Join(hostDir, "f")); err != nil || strings.TrimSpace(string(b)) != "from-hostpath" {
			t.Fatalf("hostPath file on the host = %q, %v", b, err)
		}
	})

	t.Run("limits reach the cgroup", func(t *testing.T) {
		// cgroup v1 files, then v2 files: the container sees its own cgroup.
		mem := s.kubectl("exec", "deployment/web", "--", "sh", "-c",
			"cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max")
		if strings.TrimSpace(mem) != "67108864" {
			t.Errorf("memory limit in the cgroup = %q, want 67108864", mem)
		}
		cpu := s.kubectl("exec", "deployment/web", "--", "sh", "-c",
			"cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>/dev/null || cat /sys/fs/cgroup/cpu.max")
		if f := strings.Fields(cpu); len(f) == 0 || f[0] != "25000" {
			t.Errorf("CPU quota in the cgroup = %q, want 25000 (250m of a 100ms period)", cpu)
		}
	})

	t.Run("crashing container restarts with back-off", func(t *testing.T) {
		eventually(t, 90*time.Second, "crasher restarted, with back-off", func() error {
			n := s.kubectl("get", "pod", "crasher", "-o", "jsonpath={.status.containerStatuses[0].restartCount}")
			backoffs, err := s.kubectlErr("get", "events", "--field-selector", "involvedObject.name=crasher,reason=BackOff", "-o", "name")
			if err != nil {
				return err
			}
			if n == "0" || n == "" || strings.TrimSpace(backoffs) == "" {
				return fmt.Errorf("restarts=%q, BackOff events=%q", n, backoffs)
			}
			return nil
		})
		// The kubelet swaps (and garbage-collects) dead containers while
		// it restarts them, so the "previous" one can be gone for a moment:
		// a crash's output through either view counts.
		eventually(t, 90*time.Second, "logs of a crash", func() error {
			var seen []string
			for _, args := range [][]string{{"logs", "crasher", "--previous"}, {"logs", "crasher"}} {
				out, err := s.kubectlErr(args...)
				if err == nil && strings.Contains(out, "crashing") {
					return nil
				}
				seen = append(seen, fmt.Sprintf("%v: %q %v", args, out, err))
			}
			return errors.New(strings.Join(seen, "; "))
		})
	})
}

func httpGetEquals(url, want string) error {
	client := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DialContext: (&net.Dialer{Timeout: 3 * time.Second}).DialContext}}
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if strings.TrimSpace(string(b)) != want {
		return fmt.Errorf("GET %s = %d %q", url, resp.StatusCode, b)
	}
	return nil
}
