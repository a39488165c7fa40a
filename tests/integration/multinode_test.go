//go:build integration

package integration

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"regente.io/regente/pkg/killall"
)

// A cluster of network namespaces on this machine: one server and two
// agents, each with its own netns (joined by veth to a bridge), mount
// namespace, data dir, run dir and kubelet cgroup root.
const (
	mnBridge = "rgmn0"
	mnSubnet = "10.99.0"
)

// mnNode is one node of the cluster: a regente process in its netns.
type mnNode struct {
	t       *testing.T
	name    string // node name and netns suffix
	ip      string
	dir     string
	dataDir string
	runDir  string
	cgroup  string // the kubelet's cgroup root (agents)
	args    []string
	cmd     *exec.Cmd
	log     *syncBuffer
	exited  chan struct{}
}

// nodeScript runs in a node's own mount namespace: a fresh /sys (the
// netns's devices) with the host's cgroups under it, and private pod log
// dirs, since every kubelet writes /var/log/pods.
const nodeScript = `set -e
mkdir -p "$NODE_DIR/cg"
mount --rbind /sys/fs/cgroup "$NODE_DIR/cg"
mount -t sysfs sysfs /sys
mount --rbind "$NODE_DIR/cg" /sys/fs/cgroup
umount -l "$NODE_DIR/cg"
mount -t tmpfs tmpfs /var/log/pods
mount -t tmpfs tmpfs /var/log/containers
exec "$@"`

func (n *mnNode) start() {
	n.t.Helper()
	n.log = &syncBuffer{}
	args := append([]string{"--net=/run/netns/rg-" + n.name, "unshare", "-m", "--propagation", "slave", "sh", "-c", nodeScript, "sh"}, n.args...)
	n.cmd = exec.Command("nsenter", args...)
	n.cmd.Env = append(os.Environ(), "NODE_DIR="+n.dir)
	n.cmd.Stdout, n.cmd.Stderr = n.log, n.log
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := n.cmd.Start(); err != nil {
		n.t.Fatalf("start %s: %v", n.name, err)
	}
	n.exited = make(chan struct{})
	go func() { n.cmd.Wait(); close(n.exited) }()
}

func (n *mnNode) stop() {
	if n.cmd == nil || n.cmd.Process == nil {
		return
	}
	select {
	case <-n.exited:
		return
	default:
	}
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.exited:
	case <-time.After(30 * time.Second):
		_ = n.cmd.Process.Kill()
		<-n.exited
		n.t.Errorf("%s did not stop within 30s of SIGTERM:\n%s", n.name, tail(n.log.String()))
	}
}

// mnCluster holds the nodes and a kubeconfig that reaches the server's
// netns address from the test.
type mnCluster struct {
	t          *testing.T
	bin        string
	server     *mnNode
	agents     []*mnNode
	kubeconfig string
}

func (c *mnCluster) kubectlErr(args ...string) (string, error) {
	s := &server{bin: c.bin, kubeconfig: c.kubeconfig}
	return s.kubectlErr(args...)
}

func (c *mnCluster) kubectl(args ...string) string {
	c.t.Helper()
	out, err := c.kubectlErr(args...)
	if err != nil {
		c.t.Fatal(err)
	}
	return out
}

func (c *mnCluster) apply(manifest string) {
	c.t.Helper()
	s := &server{t: c.t, bin: c.bin, kubeconfig: c.kubeconfig}
	s.apply(manifest)
}

// setupNetwork creates the bridge and one netns per node, and removes them
// (and the nodes' cgroup roots) at cleanup.
func setupNetwork(t *testing.T, names []string) {
	t.Helper()
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	teardown := func() {
		for _, n := range names {
			exec.Command("ip", "netns", "delete", "rg-"+n).Run()
			exec.Command("ip", "link", "delete", "v-"+n).Run()
		}
		exec.Command("ip", "link", "delete", mnBridge).Run()
	}
	teardown()
	t.Cleanup(teardown)
	run("ip", "link", "add", mnBridge, "type", "bridge")
	run("ip", "addr", "add", mnSubnet+".254/24", "dev", mnBridge)
	run("ip", "link", "set", mnBridge, "up")
	for i, n := range names {
		ns := "rg-" + n
		run("ip", "netns", "add", ns)
		run("ip", "link", "add", "v-"+n, "type", "veth", "peer", "name", "eth0", "netns", ns)
		run("ip", "link", "set", "v-"+n, "master", mnBridge, "up")
		run("ip", "-n", ns, "addr", "add", fmt.Sprintf("%s.%d/24", mnSubnet, i+1), "dev", "eth0")
		run("ip", "-n", ns, "link", "set", "eth0", "up")
		run("ip", "-n", ns, "link", "set", "lo", "up")
		run("ip", "-n", ns, "route", "add", "default", "via", mnSubnet+".254")
	}
}

// cgroupRoot creates a kubelet cgroup root in every hierarchy (cgroup v1
// controllers, or the v2 unified tree) and removes it at cleanup.
func cgroupRoot(t *testing.T, name string) string {
	t.Helper()
	var dirs []string
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		dirs = []string{filepath.Join("/sys/fs/cgroup", name)}
	} else {
		hierarchies, _ := filepath.Glob("/sys/fs/cgroup/*")
		for _, h := range hierarchies {
			if fi, err := os.Lstat(h); err == nil && fi.IsDir() {
				dirs = append(dirs, filepath.Join(h, name))
			}
		}
	}
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatalf("create cgroup %s: %v", d, err)
		}
	}
	t.Cleanup(func() {
		for _, d := range dirs {
			removeCgroupTree(d)
		}
	})
	return "/" + name
}

// removeCgroupTree removes a cgroup and its children, deepest first.
func removeCgroupTree(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.IsDir() {
			removeCgroupTree(filepath.Join(dir, e.Name()))
		}
	}
	os.Remove(dir)
}

// newCluster starts a server and two agents and waits for three Ready
// nodes.
func newCluster(t *testing.T, bin string, images map[string][]byte) *mnCluster {
	t.Helper()
	names := []string{"srv", "a1", "a2"}
	setupNetwork(t, names)
	root := t.TempDir()
	c := &mnCluster{t: t, bin: bin, kubeconfig: filepath.Join(root, "kubeconfig")}
	var nodes []*mnNode
	for i, name := range names {
		n := &mnNode{t: t, name: name, ip: fmt.Sprintf("%s.%d", mnSubnet, i+1), dir: filepath.Join(root, name)}
		n.dataDir = filepath.Join(n.dir, "data")
		n.runDir = filepath.Join(n.dir, "run")
		if name == "srv" {
			n.runDir = "/run/regente" // a server's node has no --run-dir
		} else {
			// Before the cleanup below, so removed after the nodes stop.
			n.cgroup = cgroupRoot(t, "rg-"+name)
		}
		imagesDir := filepath.Join(n.dataDir, "agent", "images")
		if err := os.MkdirAll(imagesDir, 0o700); err != nil {
			t.Fatal(err)
		}
		for file, data := range images {
			if err := os.WriteFile(filepath.Join(imagesDir, file), data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		nodes = append(nodes, n)
	}
	c.server, c.agents = nodes[0], nodes[1:]
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range nodes {
				if n.log != nil {
					os.WriteFile(filepath.Join(os.TempDir(), "regente-multinode-"+n.name+".log"), []byte(n.log.String()), 0o600)
				}
			}
			t.Logf("node logs: %s/regente-multinode-*.log", os.TempDir())
		}
		// Agents first: their pods talk to the server as they stop.
		for _, n := range append(c.agents, c.server) {
			n.stop()
		}
		for _, n := range nodes {
			killall.Node(n.dataDir, n.runDir)
		}
	})

	serverKubeconfig := filepath.Join(c.server.dir, "admin.yaml")
	c.server.args = []string{c.bin, "server", "--config", "", "--data-dir", c.server.dataDir,
		"--node-name", "srv", "--node-ip", c.server.ip, "--write-kubeconfig", serverKubeconfig,
		"--disable", "metrics-server,servicelb,local-storage",
		// NotReady nodes are noticed in 20 s instead of 50 s.
		"--kube-controller-manager-arg=node-monitor-grace-period=20s"}
	c.server.start()
	token := filepath.Join(c.server.dataDir, "server", "token")
	eventually(t, 90*time.Second, "server writes its kubeconfig and token", func() error {
		select {
		case <-c.server.exited:
			t.Fatalf("server exited:\n%s", tail(c.server.log.String()))
		default:
		}
		cfg, err := os.ReadFile(serverKubeconfig)
		if err != nil {
			return err
		}
		if _, err := os.Stat(token); err != nil {
			return err
		}
		// The kubeconfig names the server's loopback; from here it is
		// the server's netns address, which its certificate holds.
		rewritten := strings.ReplaceAll(string(cfg), "https://127.0.0.1:6443", "https://"+c.server.ip+":6443")
		return os.WriteFile(c.kubeconfig, []byte(rewritten), 0o600)
	})
	for _, a := range c.agents {
		a.args = c.agentArgs(a, "--token-file", token)
		a.start()
	}
	eventually(t, 3*time.Minute, "three Ready nodes", func() error {
		for _, n := range nodes {
			select {
			case <-n.exited:
				t.Fatalf("%s exited:\n%s", n.name, tail(n.log.String()))
			default:
			}
		}
		out, err := c.kubectlErr("get", "nodes", "-o", `jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status} {end}`)
		if err != nil || strings.Count(out, "=True") != 3 {
			return fmt.Errorf("nodes: %q (%v)", out, err)
		}
		return nil
	})
	return c
}

// token runs `regente token` against the cluster.
func (c *mnCluster) token(args ...string) string {
	c.t.Helper()
	args = append([]string{"token"}, args...)
	args = append(args, "--kubeconfig", c.kubeconfig, "--data-dir", c.server.dataDir)
	out, err := exec.Command(c.bin, args...).CombinedOutput()
	if err != nil {
		c.t.Fatalf("regente %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func (c *mnCluster) agentArgs(a *mnNode, extra ...string) []string {
	return append([]string{c.bin, "agent", "--config", "", "--data-dir", a.dataDir, "--run-dir", a.runDir,
		"--node-name", a.name, "--node-ip", a.ip, "--server", "https://" + c.server.ip + ":6443",
		"--kubelet-arg=cgroup-root=" + a.cgroup}, extra...)
}

// TestMultiNode joins two agents to a server, each node its own network
// namespace, and checks pod networking, Services and DNS across them, the
// join's refusals, and a node going away and coming back.
func TestMultiNode(t *testing.T) {
	bin := requirements(t)
	for _, tool := range []string{"nsenter", "unshare", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: install util-linux and iproute2 (hack/deps.sh)", tool)
		}
	}
	const image = "regente.invalid/busybox:test"
	c := newCluster(t, bin, map[string][]byte{"busybox.tar": busyboxImage(t, image)})

	// One web pod per node, each answering with its node's name.
	c.apply(fmt.Sprintf(`apiVersion: apps/v1
kind: DaemonSet
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: %s
        imagePullPolicy: Never
        env:
        - name: NODE
          valueFrom: {fieldRef: {fieldPath: spec.nodeName}}
        command: [sh, -c, 'mkdir -p /www && echo "$NODE" > /www/index.html && exec httpd -f -p 8080 -h /www']
        readinessProbe:
          tcpSocket: {port: 8080}
          periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080, nodePort: 30080}]
`, image))
	type pod struct{ name, ip, node string }
	var pods []pod
	eventually(t, 120*time.Second, "a Ready web pod on every node", func() error {
		out, err := c.kubectlErr("get", "pods", "-l", "app=web", "-o",
			`jsonpath={range .items[*]}{.metadata.name} {.status.podIP} {.spec.nodeName} {.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}`)
		if err != nil {
			return err
		}
		pods = nil
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			f := strings.Fields(line)
			if len(f) == 4 && f[3] == "True" {
				pods = append(pods, pod{f[0], f[1], f[2]})
			}
		}
		if len(pods) != 3 {
			return fmt.Errorf("ready web pods: %q", out)
		}
		return nil
	})

	t.Run("pod to pod across nodes", func(t *testing.T) {
		for _, from := range pods {
			for _, to := range pods {
				eventually(t, 30*time.Second, fmt.Sprintf("%s (%s) reaches %s (%s)", from.name, from.node, to.ip, to.node), func() error {
					out, err := httpFromPod(c, from.name, to.ip, "8080")
					if err != nil || !strings.HasSuffix(strings.TrimSpace(out), "\n"+to.node) {
						return fmt.Errorf("got %q: %v", out, err)
					}
					return nil
				})
			}
		}
	})

	t.Run("ClusterIP and DNS from every node's pods, NodePort on every node", func(t *testing.T) {
		clusterIP := strings.TrimSpace(c.kubectl("get", "service", "web", "-o", "jsonpath={.spec.clusterIP}"))
		for _, from := range pods {
			eventually(t, 30*time.Second, from.node+" reaches the ClusterIP", func() error {
				out, err := httpFromPod(c, from.name, clusterIP, "80")
				if err != nil || !strings.Contains(out, " 200 ") {
					return fmt.Errorf("got %q: %v", out, err)
				}
				return nil
			})
			eventually(t, 60*time.Second, from.node+" resolves the Service", func() error {
				out, err := c.kubectlErr("exec", from.name, "--", "nslookup", "web.default.svc.cluster.local")
				if err != nil || !strings.Contains(out, "Address: "+clusterIP) {
					return fmt.Errorf("got %q: %v", out, err)
				}
				return nil
			})
		}
		for _, n := range append([]*mnNode{c.server}, c.agents...) {
			eventually(t, 30*time.Second, "NodePort on "+n.name, func() error {
				return httpGetNonEmpty("http://" + n.ip + ":30080/")
			})
		}
	})

	t.Run("NetworkPolicy: default deny, then an allow rule", func(t *testing.T) {
		if !nftQueueSupported(t) {
			// The node must say so instead of pretending policies hold.
			for _, n := range append([]*mnNode{c.server}, c.agents...) {
				if !strings.Contains(n.log.String(), "NetworkPolicy is NOT enforced on this node") || !strings.Contains(n.log.String(), "modprobe nft_queue") {
					t.Errorf("%s does not report that NetworkPolicy cannot be enforced on this kernel", n.name)
				}
			}
			t.Skip("this kernel has no nftables queue support (nft_queue): enforcement cannot be tested here; each node reported it")
		}
		podOn := map[string]pod{}
		for _, p := range pods {
			podOn[p.node] = p
		}
		reaches := func(from, to pod) bool {
			out, err := httpFromPod(c, from.name, to.ip, "8080")
			return err == nil && strings.HasSuffix(strings.TrimSpace(out), "\n"+to.node)
		}
		expect := func(what string, from, to pod, want bool) {
			t.Helper()
			eventually(t, 30*time.Second, what, func() error {
				if got := reaches(from, to); got != want {
					return fmt.Errorf("%s (%s) -> %s (%s): reached=%v", from.name, from.node, to.name, to.node, got)
				}
				return nil
			})
		}
		c.apply(`apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-deny}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Ingress]
`)
		expect("default deny blocks a1 -> a2", podOn["a1"], podOn["a2"], false)
		expect("default deny blocks srv -> a2", podOn["srv"], podOn["a2"], false)
		c.kubectl("label", "pod", podOn["a1"].name, "access=allowed")
		c.apply(`apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-allow}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Ingress]
  ingress:
  - from: [{podSelector: {matchLabels: {access: allowed}}}]
    ports: [{port: 8080}]
`)
		expect("the allow rule lets a1 (access=allowed) reach a2", podOn["a1"], podOn["a2"], true)
		expect("srv (not allowed) is still blocked from a2", podOn["srv"], podOn["a2"], false)
		c.kubectl("delete", "networkpolicy", "web-deny", "web-allow")
		expect("without policies srv reaches a2 again", podOn["srv"], podOn["a2"], true)
	})

	t.Run("join refusals say why", func(t *testing.T) {
		tokenFile := filepath.Join(c.server.dataDir, "server", "token")
		raw, err := os.ReadFile(tokenFile)
		if err != nil {
			t.Fatal(err)
		}
		good := strings.TrimSpace(string(raw))
		hash, _, _ := strings.Cut(strings.TrimPrefix(good, "K10"), "::")
		c.kubectl("-n", "kube-system", "create", "secret", "generic", "bootstrap-token-expire",
			"--type=bootstrap.kubernetes.io/token", "--from-literal=token-id=expire", "--from-literal=token-secret=0123456789abcdef",
			"--from-literal=usage-bootstrap-authentication=true", "--from-literal=expiration=2000-01-01T00:00:00Z")
		server := "https://" + c.server.ip + ":6443"
		for _, tc := range []struct{ what, server, token, node, want string }{
			{"wrong CA hash", server, "K10" + strings.Repeat("0", 64) + "::server:whatever", "x1", "is not the one the token pins"},
			{"wrong secret", server, "K10" + hash + "::server:wrong", "x2", "secret does not match"},
			{"expired bootstrap token", server, "K10" + hash + "::expire.0123456789abcdef", "x3", "expired"},
			{"token without a CA hash", server, "expire.0123456789abcdef", "x4", "has no CA hash"},
			{"plain http server URL", "http://" + c.server.ip + ":6443", good, "x5", "must be an https:// URL"},
			{"a registered node's name", server, good, "a1", "registered by another machine"},
		} {
			dir := t.TempDir()
			cmd := exec.Command(bin, "agent", "--config", "", "--data-dir", dir, "--run-dir", filepath.Join(dir, "run"),
				"--server", tc.server, "--token", tc.token, "--node-name", tc.node)
			out, err := runWithTimeout(cmd, 30*time.Second)
			if err == nil || !strings.Contains(out, tc.want) {
				t.Errorf("%s: want a failure saying %q, got %v:\n%s", tc.what, tc.want, err, tail(out))
			}
		}
		// A deleted bootstrap token no longer joins.
		deleted := strings.TrimSpace(c.token("create"))
		id, _, _ := strings.Cut(strings.SplitN(deleted, "::", 2)[1], ".")
		c.token("delete", id)
		dir0 := t.TempDir()
		out0, err := runWithTimeout(exec.Command(bin, "agent", "--config", "", "--data-dir", dir0, "--run-dir", filepath.Join(dir0, "run"),
			"--server", server, "--token", deleted, "--node-name", "x7"), 30*time.Second)
		if err == nil || !strings.Contains(out0, "does not exist") {
			t.Errorf("deleted bootstrap token: want a refusal, got %v:\n%s", err, tail(out0))
		}

		// An unreachable server is retried, and the log says so.
		dir := t.TempDir()
		cmd := exec.Command(bin, "agent", "--config", "", "--data-dir", dir, "--run-dir", filepath.Join(dir, "run"),
			"--server", "https://"+mnSubnet+".9:6443", "--token", good, "--node-name", "x6")
		out, _ := runWithTimeout(cmd, 5*time.Second)
		if !strings.Contains(out, "Cannot join the server yet; retrying") {
			t.Errorf("unreachable server: want a retry line, got:\n%s", tail(out))
		}
	})

	t.Run("a stopped agent's pods move; a re-installed agent joins again", func(t *testing.T) {
		a2 := c.agents[1]
		c.apply(fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: mover}
spec:
  replicas: 1
  selector: {matchLabels: {app: mover}}
  template:
    metadata: {labels: {app: mover}}
    spec:
      affinity:
        nodeAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
            nodeSelectorTerms: [{matchExpressions: [{key: kubernetes.io/hostname, operator: In, values: [a1, a2]}]}]
          preferredDuringSchedulingIgnoredDuringExecution:
          - weight: 100
            preference: {matchExpressions: [{key: kubernetes.io/hostname, operator: In, values: [a2]}]}
      tolerations:
      - {key: node.kubernetes.io/not-ready, operator: Exists, effect: NoExecute, tolerationSeconds: 2}
      - {key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: 2}
      containers:
      - {name: sleep, image: %s, imagePullPolicy: Never, command: [sleep, "3600"]}
`, image))
		// node/phase/deletionTimestamp of each mover pod.
		movers := func() []string {
			out, _ := c.kubectlErr("get", "pods", "-l", "app=mover", "-o",
				`jsonpath={range .items[*]}{.spec.nodeName}/{.status.phase}/{.metadata.deletionTimestamp}{" "}{end}`)
			return strings.Fields(out)
		}
		eventually(t, 60*time.Second, "mover runs on a2", func() error {
			if got := movers(); len(got) != 1 || got[0] != "a2/Running/" {
				return fmt.Errorf("mover pods: %q", got)
			}
			return nil
		})
		a2.stop()
		eventually(t, 90*time.Second, "a2 NotReady", func() error {
			out, _ := c.kubectlErr("get", "node", "a2", "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`)
			if out == "True" {
				return fmt.Errorf("a2 Ready=%q", out)
			}
			return nil
		})
		eventually(t, 90*time.Second, "mover's replacement runs on a1", func() error {
			if got := movers(); !slices.Contains(got, "a1/Running/") {
				return fmt.Errorf("mover pods: %q", got)
			}
			return nil
		})

		// A re-install: the node is deleted and the machine comes back
		// with a new node password, joining with a bootstrap token.
		created := c.token("create", "--ttl", "1h", "--description", "re-install of a2")
		if !strings.Contains(c.token("list"), "re-install of a2") {
			t.Errorf("regente token list does not show the new token")
		}
		a2.args = c.agentArgs(a2, "--token", strings.TrimSpace(created))
		c.kubectl("delete", "node", "a2")
		if err := os.Remove(filepath.Join(a2.dataDir, "agent", "node-password")); err != nil {
			t.Fatal(err)
		}
		eventually(t, 30*time.Second, "a2's node password is released", func() error {
			if _, err := c.kubectlErr("-n", "kube-system", "get", "secret", "a2.node-password.regente"); err == nil {
				return fmt.Errorf("still there")
			}
			return nil
		})
		a2.start()
		eventually(t, 120*time.Second, "a2 Ready again", func() error {
			select {
			case <-a2.exited:
				t.Fatalf("a2 exited:\n%s", tail(a2.log.String()))
			default:
			}
			out, _ := c.kubectlErr("get", "node", "a2", "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`)
			if out != "True" {
				return fmt.Errorf("a2 Ready=%q", out)
			}
			return nil
		})
	})
}

// nftQueueSupported reports whether this kernel accepts an nftables queue
// rule, which kube-network-policies needs, trying one in a scratch netns.
func nftQueueSupported(t *testing.T) bool {
	t.Helper()
	const ns = "rg-nftprobe"
	exec.Command("ip", "netns", "delete", ns).Run()
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	defer exec.Command("ip", "netns", "delete", ns).Run()
	script := "nft add table inet t && nft add chain inet t c '{ type filter hook forward priority 0; }' && nft add rule inet t c queue num 100 bypass"
	return exec.Command("ip", "netns", "exec", ns, "sh", "-c", script).Run() == nil
}

// httpFromPod sends an HTTP GET from inside a pod with busybox nc (the
// static busybox's wget crashes resolving names) and returns the response.
func httpFromPod(c *mnCluster, pod, ip, port string) (string, error) {
	return c.kubectlErr("exec", pod, "--", "sh", "-c", fmt.Sprintf(`printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 3 %s %s`, ip, port))
}

// runWithTimeout runs cmd and returns its combined output; a process still
// running at the timeout is killed and reported as an error.
func runWithTimeout(cmd *exec.Cmd, timeout time.Duration) (string, error) {
	buf := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = buf, buf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return "", err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return buf.String(), err
	case <-time.After(timeout):
		_ = cmd.Process.Kill()
		<-done
		return buf.String(), fmt.Errorf("still running after %s", timeout)
	}
}

func httpGetNonEmpty(url string) error {
	client := &http.Client{Timeout: 3 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || len(strings.TrimSpace(string(body))) == 0 {
		return fmt.Errorf("%s: %s %q", url, resp.Status, body)
	}
	return nil
}
