//go:build integration

package integration

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"regente.io/regente/pkg/killall"
	"regente.io/regente/tests/nscluster"
)

// startPostgres runs a throwaway PostgreSQL (Debian's package) on addr with
// trust authentication, and stops it at cleanup.
func startPostgres(t *testing.T, host string, port int) {
	t.Helper()
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	if len(bins) == 0 {
		t.Fatal("PostgreSQL not found: install Debian's postgresql package (hack/deps.sh does)")
	}
	binDir := filepath.Dir(bins[len(bins)-1])
	// Not under t.TempDir(): its parent is root's alone, and PostgreSQL
	// runs as its own user.
	top, err := os.MkdirTemp("", "regente-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(top) })
	dir := filepath.Join(top, "data")
	if out, err := exec.Command("chown", "-R", "postgres:postgres", top).CombinedOutput(); err != nil {
		t.Fatalf("chown: %v: %s", err, out)
	}
	pgUser, err := user.Lookup("postgres")
	if err != nil {
		t.Fatalf("user postgres: %v (Debian's postgresql package creates it)", err)
	}
	uid, _ := strconv.Atoi(pgUser.Uid)
	gid, _ := strconv.Atoi(pgUser.Gid)
	asPostgres := func(name string, args ...string) *exec.Cmd {
		cmd := exec.Command(filepath.Join(binDir, name), args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, Pdeathsig: syscall.SIGKILL}
		cmd.Dir = top
		return cmd
	}
	if out, err := asPostgres("initdb", "-D", dir, "-A", "trust", "-U", "postgres").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v: %s", err, out)
	}
	// The servers connect from their namespaces' addresses.
	hba, err := os.OpenFile(filepath.Join(dir, "pg_hba.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(hba, "host all all %s.0/24 trust\n", host[:strings.LastIndex(host, ".")])
	hba.Close()
	cmd := asPostgres("postgres", "-D", dir, "-h", host, "-p", fmt.Sprint(port), "-k", dir)
	log := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGINT) // fast shutdown
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
		}
	})
	eventually(t, 30*time.Second, "PostgreSQL listening", func() error {
		c, err := net.DialTimeout("tcp", net.JoinHostPort(host, fmt.Sprint(port)), time.Second)
		if err != nil {
			return fmt.Errorf("%v\n%s", err, log.String())
		}
		return c.Close()
	})
}

// TestServersOnPostgres runs two servers on one PostgreSQL and an agent:
// the second server joins with the server token, both serve the same
// objects, and the agent keeps its node working when the server it joined
// through goes away.
func TestServersOnPostgres(t *testing.T) {
	bin := requirements(t)
	const image = "regente.invalid/busybox:test"
	network := nscluster.Network{Bridge: "rgha0", Subnet: "10.97.0", Names: []string{"s1", "s2", "a1"}}
	if err := network.Setup(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(network.Teardown)
	startPostgres(t, network.Subnet+".254", 15432)
	endpoint := "postgres://postgres@" + network.Subnet + ".254:15432/regente?sslmode=disable"

	root := t.TempDir()
	var nodes []*nscluster.Node
	for i, name := range network.Names {
		n := &nscluster.Node{Name: name, IP: network.IP(i), Dir: filepath.Join(root, name)}
		n.DataDir = filepath.Join(n.Dir, "data")
		n.RunDir = filepath.Join(n.Dir, "run")
		nodes = append(nodes, n)
	}
	s1, s2, a1 := nodes[0], nodes[1], nodes[2]
	cgroup, removeCgroup, err := nscluster.CgroupRoot("rg-ha-a1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(removeCgroup)
	images := filepath.Join(a1.DataDir, "agent", "images")
	os.MkdirAll(images, 0o700)
	if err := os.WriteFile(filepath.Join(images, "busybox.tar"), busyboxImage(t, image), 0o600); err != nil {
		t.Fatal(err)
	}
	c := &mnCluster{t: t, bin: bin, kubeconfig: filepath.Join(root, "kubeconfig")}
	t.Cleanup(func() {
		saveLogsOnFailure(t, "ha", nodes)
		for _, n := range []*nscluster.Node{a1, s2, s1} {
			n.Stop(30 * time.Second)
		}
		killall.Node(a1.DataDir, a1.RunDir)
	})
	serverArgs := func(n *nscluster.Node, extra ...string) []string {
		return append([]string{bin, "server", "--config", "", "--data-dir", n.DataDir, "--node-ip", n.IP, "--node-name", n.Name,
			"--write-kubeconfig", filepath.Join(n.Dir, "admin.yaml"), "--disable-agent", "--datastore-endpoint", endpoint,
			"--disable", "metrics-server,servicelb,local-storage"}, extra...)
	}
	// kubeconfigFor points the admin kubeconfig a server wrote at that
	// server's netns address.
	kubeconfigFor := func(n *nscluster.Node) string {
		t.Helper()
		path := filepath.Join(n.Dir, "admin-remote.yaml")
		eventually(t, 2*time.Minute, n.Name+" serves", func() error {
			c.failIfExited(n)
			b, err := os.ReadFile(filepath.Join(n.Dir, "admin.yaml"))
			if err != nil {
				return err
			}
			if err := os.WriteFile(path, []byte(strings.ReplaceAll(string(b), "https://127.0.0.1:6443", "https://"+n.IP+":6443")), 0o600); err != nil {
				return err
			}
			_, err = (&server{bin: bin, kubeconfig: path}).kubectlErr("get", "--raw", "/readyz")
			return err
		})
		return path
	}

	s1.Args = serverArgs(s1)
	c.start(s1)
	c.kubeconfig = kubeconfigFor(s1)
	token, err := os.ReadFile(filepath.Join(s1.DataDir, "server", "token"))
	if err != nil {
		t.Fatal(err)
	}
	s2.Args = serverArgs(s2, "--server", "https://"+s1.IP+":6443", "--token", strings.TrimSpace(string(token)))
	c.start(s2)
	viaS2 := &mnCluster{t: t, bin: bin, kubeconfig: kubeconfigFor(s2)}

	t.Run("both servers serve the same objects", func(t *testing.T) {
		c.kubectl("create", "configmap", "from-s1", "--from-literal=k=v")
		if out := viaS2.kubectl("get", "configmap", "from-s1", "-o", "jsonpath={.data.k}"); out != "v" {
			t.Errorf("s2 reads %q for s1's ConfigMap", out)
		}
		eventually(t, 30*time.Second, "both servers in the kubernetes endpoints", func() error {
			out := c.kubectl("get", "endpointslices", "-l", "kubernetes.io/service-name=kubernetes", "-o", "jsonpath={.items[*].endpoints[*].addresses[*]}")
			if !strings.Contains(out, s1.IP) || !strings.Contains(out, s2.IP) {
				return fmt.Errorf("endpoints %q", out)
			}
			return nil
		})
	})

	a1.Args = []string{bin, "agent", "--config", "", "--data-dir", a1.DataDir, "--run-dir", a1.RunDir, "--node-name", "a1",
		"--node-ip", a1.IP, "--server", "https://" + s1.IP + ":6443", "--token", strings.TrimSpace(string(token)),
		"--kubelet-arg=cgroup-root=" + cgroup}
	c.start(a1)
	eventually(t, 2*time.Minute, "a1 Ready and its load balancer knows both servers", func() error {
		c.failIfExited(a1)
		if out, _ := c.kubectlErr("get", "node", "a1", "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`); out != "True" {
			return fmt.Errorf("a1 Ready=%q", out)
		}
		if !strings.Contains(a1.Log.String(), s2.IP+":6443") {
			return fmt.Errorf("the agent's load balancer has not learned %s yet", s2.IP)
		}
		return nil
	})

	t.Run("the agent keeps working when the server it joined through stops", func(t *testing.T) {
		c.stop(s1)
		// The node stays Ready through s2 (its lease keeps being renewed),
		// and a new pod is scheduled and started on it.
		viaS2.kubectl("run", "after-failover", "--image="+image, "--image-pull-policy=Never", "--", "sh", "-c", "echo still-here; exec sleep 3600")
		eventually(t, 2*time.Minute, "a pod created after s1 stopped runs on a1", func() error {
			out, err := viaS2.kubectlErr("logs", "after-failover")
			if err != nil || !strings.Contains(out, "still-here") {
				return fmt.Errorf("logs %q: %v", out, err)
			}
			return nil
		})
		time.Sleep(25 * time.Second) // longer than a node lease: a1 would be NotReady by now if cut off
		if out := viaS2.kubectl("get", "node", "a1", "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`); out != "True" {
			t.Errorf("a1 Ready=%q after s1 stopped", out)
		}
		if !strings.Contains(a1.Log.String(), "API server load balancer switched server") {
			t.Errorf("the agent's log does not show the switch to s2")
		}
	})
}
