//go:build integration

package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"regente.io/regente/pkg/killall"
	"regente.io/regente/tests/dbserver"
	"regente.io/regente/tests/faults"
	"regente.io/regente/tests/nscluster"
)

// startPostgres runs a throwaway PostgreSQL on host:port until cleanup.
func startPostgres(t *testing.T, host string, port int) {
	t.Helper()
	db, err := dbserver.Postgres(host, port)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Stop)
}

// servingAt waits until the server node n answers /readyz at its netns
// address and returns a view of the cluster through it: the admin
// kubeconfig n wrote, pointed at that address.
func (c *mnCluster) servingAt(n *nscluster.Node, timeout time.Duration) *mnCluster {
	c.t.Helper()
	path := filepath.Join(n.Dir, "admin-remote.yaml")
	eventually(c.t, timeout, n.Name+" serves", func() error {
		c.failIfExited(n)
		return readyAt(c.bin, n, path)
	})
	return &mnCluster{t: c.t, bin: c.bin, kubeconfig: path}
}

// readyAt writes to path the admin kubeconfig the server node n wrote,
// pointed at n's netns address, and checks /readyz through it.
func readyAt(bin string, n *nscluster.Node, path string) error {
	b, err := os.ReadFile(filepath.Join(n.Dir, "admin.yaml"))
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(string(b), "https://127.0.0.1:6443", "https://"+n.IP+":6443")), 0o600); err != nil {
		return err
	}
	_, err = (&server{bin: bin, kubeconfig: path}).kubectlErr("get", "--raw", "/readyz")
	return err
}

// sharedServers are two servers on one external datastore, each in its
// own network namespace, and the nodes of their network.
type sharedServers struct {
	c, viaS2 *mnCluster
	s1, s2   *nscluster.Node
	nodes    []*nscluster.Node
	token    string
}

// startSharedServers starts s1, then s2 joining it with the server token,
// both on endpoint, without agents of their own.
func startSharedServers(t *testing.T, bin string, network nscluster.Network, endpoint string) *sharedServers {
	root := t.TempDir()
	var nodes []*nscluster.Node
	for i, name := range network.Names {
		n := &nscluster.Node{Name: name, IP: network.IP(i), Dir: filepath.Join(root, name)}
		n.DataDir = filepath.Join(n.Dir, "data")
		n.RunDir = filepath.Join(n.Dir, "run")
		nodes = append(nodes, n)
	}
	s1, s2 := nodes[0], nodes[1]
	c := &mnCluster{t: t, bin: bin, kubeconfig: filepath.Join(root, "kubeconfig")}
	t.Cleanup(func() {
		saveLogsOnFailure(t, "shared-"+network.Bridge, nodes)
		for i := len(nodes) - 1; i >= 0; i-- {
			nodes[i].Stop(30 * time.Second)
		}
		for _, n := range nodes {
			killall.Node(n.DataDir, n.RunDir)
		}
	})
	serverArgs := func(n *nscluster.Node, extra ...string) []string {
		return append([]string{bin, "server", "--config", "", "--data-dir", n.DataDir, "--node-ip", n.IP, "--node-name", n.Name,
			"--write-kubeconfig", filepath.Join(n.Dir, "admin.yaml"), "--disable-agent", "--datastore-endpoint", endpoint,
			"--disable", "metrics-server,servicelb,local-storage,ingress"}, extra...)
	}
	s1.Args = serverArgs(s1)
	c.start(s1)
	c.kubeconfig = c.servingAt(s1, 2*time.Minute).kubeconfig
	token, err := os.ReadFile(filepath.Join(s1.DataDir, "server", "token"))
	if err != nil {
		t.Fatal(err)
	}
	s2.Args = serverArgs(s2, "--server", "https://"+s1.IP+":6443", "--token", strings.TrimSpace(string(token)))
	c.start(s2)
	viaS2 := c.servingAt(s2, 2*time.Minute)
	return &sharedServers{c: c, viaS2: viaS2, s1: s1, s2: s2, nodes: nodes, token: strings.TrimSpace(string(token))}
}

// checkSameObjects checks that both servers read each other's writes, and
// that a watch through one sees a write made through the other.
func (h *sharedServers) checkSameObjects(t *testing.T) {
	h.c.kubectl("create", "configmap", "from-s1", "--from-literal=k=v")
	if out := h.viaS2.kubectl("get", "configmap", "from-s1", "-o", "jsonpath={.data.k}"); out != "v" {
		t.Errorf("s2 reads %q for s1's ConfigMap", out)
	}
	h.viaS2.kubectl("create", "configmap", "from-s2", "--from-literal=k=w")
	if out := h.c.kubectl("get", "configmap", "from-s2", "-o", "jsonpath={.data.k}"); out != "w" {
		t.Errorf("s1 reads %q for s2's ConfigMap", out)
	}
	for _, w := range []struct {
		watcher, writer *mnCluster
		name            string
	}{{h.c, h.viaS2, "watched-from-s1"}, {h.viaS2, h.c, "watched-from-s2"}} {
		watch := exec.Command(h.c.bin, "kubectl", "--kubeconfig", w.watcher.kubeconfig, "get", "configmaps", "--watch-only", "-o", "name")
		out := &syncBuffer{}
		watch.Stdout, watch.Stderr = out, out
		if err := watch.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Second) // the watch is open
		w.writer.kubectl("create", "configmap", w.name)
		eventually(t, 30*time.Second, "the other server's watch sees "+w.name, func() error {
			if !strings.Contains(out.String(), "configmap/"+w.name) {
				return fmt.Errorf("watch printed %q", out.String())
			}
			return nil
		})
		watch.Process.Kill()
		watch.Wait()
	}
	eventually(t, 30*time.Second, "both servers in the kubernetes endpoints", func() error {
		out := h.c.kubectl("get", "endpointslices", "-l", "kubernetes.io/service-name=kubernetes", "-o", "jsonpath={.items[*].endpoints[*].addresses[*]}")
		if !strings.Contains(out, h.s1.IP) || !strings.Contains(out, h.s2.IP) {
			return fmt.Errorf("endpoints %q", out)
		}
		return nil
	})
}

// TestServersOnPostgres runs two servers on one PostgreSQL and an agent:
// the second server joins with the server token, both serve the same
// objects, each killed with SIGKILL under a steady load loses no
// acknowledged write or watch event, and the agent keeps its node working when the server it joined
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

	cgroup, removeCgroup, err := nscluster.CgroupRoot("rg-ha-a1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(removeCgroup)
	h := startSharedServers(t, bin, network, endpoint)
	c, viaS2, s1, s2, a1 := h.c, h.viaS2, h.s1, h.s2, h.nodes[2]
	images := filepath.Join(a1.DataDir, "agent", "images")
	os.MkdirAll(images, 0o700)
	if err := os.WriteFile(filepath.Join(images, "busybox.tar"), busyboxImage(t, image), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Run("both servers serve the same objects", h.checkSameObjects)
	t.Run("a server killed under load loses no acknowledged write, either one", func(t *testing.T) {
		cfg, err := clientcmd.BuildConfigFromFlags("", viaS2.kubeconfig)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		load, err := faults.Start(ctx, cfg, faults.Options{Namespace: "pg-kills", Rate: 200})
		if err != nil {
			t.Fatal(err)
		}
		// First the server the load does not write through, then the one
		// it does: its writes are refused until the restart.
		for _, n := range []*nscluster.Node{s1, s2} {
			time.Sleep(time.Second + rand.N(2*time.Second))
			n.Kill()
			killed := time.Now()
			c.start(n)
			c.servingAt(n, 2*time.Minute)
			d, err := load.WaitForAck(ctx, killed, time.Minute)
			if err != nil {
				t.Fatalf("after the kill of %s: %v", n.Name, err)
			}
			t.Logf("kill -9 of %s: writes through s2 acknowledged again %s after", n.Name, d.Round(time.Millisecond))
		}
		stopLoad(t, ctx, load, 500)
	})

	a1.Args = []string{bin, "agent", "--config", "", "--data-dir", a1.DataDir, "--run-dir", a1.RunDir, "--node-name", "a1",
		"--node-ip", a1.IP, "--server", "https://" + s1.IP + ":6443", "--token", h.token,
		"--kubelet-arg=cgroup-root=" + cgroup, nscluster.KubeletEvictionArg}
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

	// The agent restarts while s1, the server its --server names, is still
	// down: it joins through s2, which its load balancer learned and kept.
	if s1.Running() {
		t.Fatal("s1 still runs: the restart below would not show a join through s2")
	}
	c.stop(a1)
	c.start(a1)
	eventually(t, 2*time.Minute, "a1 joined through s2 and Ready after a restart with s1 down", func() error {
		c.failIfExited(a1)
		if log := a1.Log.String(); !strings.Contains(log, "Joined the cluster") || !strings.Contains(log, "Node is Ready") {
			return fmt.Errorf("a1 has not joined and become Ready yet")
		}
		return nil
	})
}

// startMariaDB runs a throwaway MariaDB on host:port, with a database
// "regente" for the user regente/password, until cleanup.
func startMariaDB(t *testing.T, host string, port int, password string) {
	t.Helper()
	db, err := dbserver.MariaDB(host, port, password)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Stop)
}

// TestServersOnMariaDB runs two servers on one MariaDB: both serve the same
// objects and watches through one see writes through the other. A wrong
// password is refused with the endpoint named and the password masked.
func TestServersOnMariaDB(t *testing.T) {
	bin := requirements(t)
	network := nscluster.Network{Bridge: "rgmy0", Subnet: "10.95.0", Names: []string{"s1", "s2"}}
	if err := network.Setup(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(network.Teardown)
	const password = "Maria-pw-1"
	host := network.Subnet + ".254"
	startMariaDB(t, host, 13306, password)

	t.Run("a wrong password is refused, masked", func(t *testing.T) {
		wrong := "mysql://regente:not-the-password@tcp(" + host + ":13306)/regente"
		s := newServer(t, bin, "--datastore-endpoint", wrong)
		out, err := runWithTimeout(exec.Command(bin, s.args...), 90*time.Second)
		if err == nil {
			t.Fatalf("the server started with a wrong datastore password:\n%s", tail(out))
		}
		if strings.Contains(out, "not-the-password") {
			t.Errorf("the output shows the datastore password:\n%s", tail(out))
		}
		if !strings.Contains(out, "regente:***@tcp("+host+":13306)/regente") {
			t.Errorf("the error does not name the datastore endpoint (password masked):\n%s", tail(out))
		}
	})

	endpoint := "mysql://regente:" + password + "@tcp(" + host + ":13306)/regente"
	h := startSharedServers(t, bin, network, endpoint)
	t.Run("both servers serve the same objects", h.checkSameObjects)
}
