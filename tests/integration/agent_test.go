//go:build integration

package integration

import (
	"encoding/json"
	"fmt"
	"net"
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
	// Pods reach the API server through the kubernetes Service, whose
	// endpoint is the node IP: a node must not bind loopback only.
	s := newProcess(t, bin, append([]string{"--bind-address=0.0.0.0"}, extra...)...)
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
	for _, applet := range []string{"sh", "tar", "cat", "echo", "sleep", "nc", "tail", "printf", "httpd", "mkdir", "ls", "nslookup"} {
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
		select {
		case <-s.exited:
			t.Fatalf("regente exited (%v) before the node was Ready:\n%s", s.cmd.ProcessState, tail(s.log.String()))
		default:
		}
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
	runtimesLog := prepareRuntimes(t, s)
	s.start()
	s.waitNodeReady(t)

	t.Run("CIS self-check without the profile fails what the profile adds", func(t *testing.T) {
		code, out, status := cisCheck(t, s)
		// regente's defaults pass every control but the four the profile adds.
		want := map[string]string{}
		for _, id := range cisControls {
			want[id] = "OK"
		}
		for _, id := range []string{"1.2.17-20", "1.2.29-31", "4.2.6", "5.2"} {
			want[id] = "FAIL"
		}
		for id, st := range want {
			if status[id] != st {
				t.Errorf("control %s: %s, want %s", id, status[id], st)
			}
		}
		if code != 1 || !strings.Contains(out, "fix: start the server (and agents) with --profile cis") {
			t.Errorf("exit %d, want 1 with the fix:\n%s", code, out)
		}
	})

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

	t.Run("flannel vxlan leases the node's pod CIDR", func(t *testing.T) {
		checkFlannel(t, s, "vxlan")
		link, err := exec.Command("ip", "-d", "link", "show", "flannel.1").CombinedOutput()
		if err != nil || !strings.Contains(string(link), "vxlan id 1") {
			t.Fatalf("no vxlan device flannel.1: %v %s", err, link)
		}
	})

	testWorkloads(t, s, image)
	testRuntimes(t, s, image, runtimesLog)

	t.Run("restart keeps the container running", func(t *testing.T) {
		before := markerPID(t)
		if code, took := s.stop(); code != 0 {
			t.Fatalf("stop exit code %d after %s:\n%s", code, took, tail(s.log.String()))
		}
		if strings.Contains(s.log.String(), "did not stop cleanly") {
			t.Errorf("a component outlived the stop timeout:\n%s", tail(s.log.String()))
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

// checkFlannel checks that flannel published its lease on the node in its
// own annotations and that the CNI config and subnet file follow the
// lease.
func checkFlannel(t *testing.T, s *server, backend string) {
	t.Helper()
	podCIDR := s.kubectl("get", "nodes", "-o", "jsonpath={.items[0].spec.podCIDR}")
	var annotations map[string]string
	eventually(t, 60*time.Second, "flannel annotations on the node", func() error {
		out, err := s.kubectlErr("get", "nodes", "-o", "jsonpath={.items[0].metadata.annotations}")
		if err != nil {
			return err
		}
		annotations = nil
		if err := json.Unmarshal([]byte(out), &annotations); err != nil {
			return err
		}
		if annotations["flannel.alpha.coreos.com/backend-type"] == "" {
			return fmt.Errorf("annotations %v", annotations)
		}
		return nil
	})
	if got := annotations["flannel.alpha.coreos.com/backend-type"]; got != backend {
		t.Errorf("backend-type annotation = %q, want %q", got, backend)
	}
	if got := annotations["flannel.alpha.coreos.com/public-ip"]; got == "" {
		t.Errorf("no public-ip annotation: %v", annotations)
	}
	env, err := os.ReadFile("/run/regente/flannel/subnet.env")
	if err != nil {
		t.Fatal(err)
	}
	_, lease, err := net.ParseCIDR(podCIDR)
	if err != nil {
		t.Fatalf("node podCIDR %q: %v", podCIDR, err)
	}
	if !strings.Contains(string(env), "FLANNEL_NETWORK=10.42.0.0/16") || !strings.Contains(string(env), "FLANNEL_SUBNET="+nextIP(lease.IP)) {
		t.Errorf("subnet.env does not follow the lease %s:\n%s", podCIDR, env)
	}
	conf, err := os.ReadFile(filepath.Join(s.dataDir, "agent", "etc", "cni", "net.d", "10-regente.conflist"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(conf), `"subnet": "`+podCIDR+`"`) {
		t.Errorf("CNI config does not use the lease %s:\n%s", podCIDR, conf)
	}
}

// nextIP returns the address after ip, as flannel writes a lease's first
// usable address: 10.42.0.0/24 → 10.42.0.1/24.
func nextIP(ip net.IP) string {
	v4 := ip.To4()
	next := net.IPv4(v4[0], v4[1], v4[2], v4[3]+1)
	return next.String() + "/"
}

// TestFlannelBackends runs the node with host-gw, then with none, which
// leaves the pod network to a CNI the user brings.
func TestFlannelBackends(t *testing.T) {
	bin := requirements(t)
	const image = "regente.invalid/busybox:test"
	archives := map[string][]byte{"busybox.tar": busyboxImage(t, image)}

	t.Run("host-gw", func(t *testing.T) {
		// A vxlan device left by an earlier node would hide whether host-gw
		// made one.
		exec.Command("ip", "link", "delete", "flannel.1").Run()
		s := newNode(t, bin, archives, "--flannel-backend=host-gw")
		s.start()
		s.waitNodeReady(t)
		checkFlannel(t, s, "host-gw")
		servePodOnClusterIP(t, s, "hostgw", image)
		if _, err := exec.Command("ip", "link", "show", "flannel.1").CombinedOutput(); err == nil {
			t.Errorf("host-gw created the vxlan device flannel.1")
		}
	})

	// vxlan with kube-proxy, and so flannel, in nftables mode.
	t.Run("nftables", func(t *testing.T) {
		s := newNode(t, bin, archives, "--kube-proxy-arg=proxy-mode=nftables")
		s.start()
		s.waitNodeReady(t)
		checkFlannel(t, s, "vxlan")
		servePodOnClusterIP(t, s, "nft", image)
		for _, table := range []string{"ip kube-proxy", "ip flannel-ipv4"} {
			if out, err := exec.Command("nft", "list", "table", table).CombinedOutput(); err != nil {
				t.Errorf("nft table %s missing: %v %s", table, err, out)
			}
		}
	})

	t.Run("none", func(t *testing.T) {
		s := newNode(t, bin, archives, "--flannel-backend=none")
		s.start()
		eventually(t, 60*time.Second, "node registered without a network", func() error {
			out, err := s.kubectlErr("get", "nodes", "-o", `jsonpath={.items[*].status.conditions[?(@.type=="Ready")].message}`)
			if err != nil {
				return err
			}
			if !strings.Contains(out, "network plugin") && !strings.Contains(out, "NetworkPluginNotReady") {
				return fmt.Errorf("Ready message %q", out)
			}
			return nil
		})
		if !strings.Contains(s.log.String(), "--flannel-backend=none") {
			t.Errorf("the log does not say the pod network is left to the user")
		}
		if _, err := os.Stat(filepath.Join(s.dataDir, "agent", "etc", "cni", "net.d", "10-regente.conflist")); err == nil {
			t.Errorf("a CNI config was written although --flannel-backend=none")
		}
	})
}

// servePodOnClusterIP runs an HTTP server pod behind a ClusterIP Service
// and checks that the host reaches it on the pod IP and on the Service IP.
func servePodOnClusterIP(t *testing.T, s *server, name, image string) {
	t.Helper()
	s.kubectl("run", name, "--image="+image, "--image-pull-policy=Never", "--port=8080", "--expose", "--command", "--",
		"sh", "-c", "mkdir -p /www && echo hello-"+name+" > /www/index.html && exec httpd -f -p 8080 -h /www")
	s.kubectl("wait", "pod/"+name, "--for=condition=Ready", "--timeout=60s")
	ip := s.kubectl("get", "pod", name, "-o", "jsonpath={.status.podIP}")
	podCIDR := s.kubectl("get", "nodes", "-o", "jsonpath={.items[0].spec.podCIDR}")
	if _, lease, err := net.ParseCIDR(podCIDR); err != nil || !lease.Contains(net.ParseIP(ip)) {
		t.Fatalf("pod IP %q outside the node's lease %q", ip, podCIDR)
	}
	eventually(t, 30*time.Second, "the host reaches the pod", func() error {
		return httpGetEquals("http://"+ip+":8080/", "hello-"+name)
	})
	clusterIP := s.kubectl("get", "service", name, "-o", "jsonpath={.spec.clusterIP}")
	eventually(t, 30*time.Second, "the host reaches the ClusterIP", func() error {
		return httpGetEquals("http://"+clusterIP+":8080/", "hello-"+name)
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
