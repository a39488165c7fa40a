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
	"regente.io/regente/tests/nscluster"
)

// mnNet is the test cluster's network: one netns per node on a bridge.
var mnNet = nscluster.Network{Bridge: "rgmn0", Subnet: "10.99.0", Names: []string{"srv", "a1", "a2"}}

// mnCluster holds the nodes and a kubeconfig that reaches the server's
// netns address from the test.
type mnCluster struct {
	t          *testing.T
	bin        string
	server     *nscluster.Node
	agents     []*nscluster.Node
	spares     []*nscluster.Node // set up, not started
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

// start starts a node and fails the test if it cannot.
func (c *mnCluster) start(n *nscluster.Node) {
	c.t.Helper()
	if err := n.Start(); err != nil {
		c.t.Fatal(err)
	}
}

// stop stops a node, failing the test if it hangs.
func (c *mnCluster) stop(n *nscluster.Node) {
	c.t.Helper()
	if err := n.Stop(30 * time.Second); err != nil {
		c.t.Errorf("%v:\n%s", err, tail(n.Log.String()))
	}
}

// failIfExited ends the test with a node's log if its process died.
func (c *mnCluster) failIfExited(nodes ...*nscluster.Node) {
	c.t.Helper()
	for _, n := range nodes {
		select {
		case <-n.Exited():
			c.t.Fatalf("%s exited:\n%s", n.Name, tail(n.Log.String()))
		default:
		}
	}
}

// newCluster starts a server and two agents and waits for three Ready
// nodes.
func newCluster(t *testing.T, bin string, images map[string][]byte, network nscluster.Network, serverArgs ...string) *mnCluster {
	t.Helper()
	return newClusterWith(t, bin, images, network, clusterOptions{serverArgs: serverArgs})
}

// clusterOptions changes how newClusterWith builds a cluster.
type clusterOptions struct {
	serverArgs []string
	// agentCgroup returns an agent's kubelet cgroup root and the argv
	// prefix its process runs under (a memory-limited cgroup); nil gives
	// each agent a cgroup root of its own.
	agentCgroup func(t *testing.T, name string) (root string, wrap []string)
	// spares are the last names of the network: nodes set up (netns, data
	// dir, images) but not started, for a test to start as it needs.
	spares int
}

func newClusterWith(t *testing.T, bin string, images map[string][]byte, network nscluster.Network, opts clusterOptions) *mnCluster {
	t.Helper()
	serverArgs := opts.serverArgs
	if err := network.Setup(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(network.Teardown)
	root := t.TempDir()
	c := &mnCluster{t: t, bin: bin, kubeconfig: filepath.Join(root, "kubeconfig")}
	var nodes []*nscluster.Node
	for i, name := range network.Names {
		n := &nscluster.Node{Name: name, IP: network.IP(i), Dir: filepath.Join(root, name)}
		n.DataDir = filepath.Join(n.Dir, "data")
		n.RunDir = filepath.Join(n.Dir, "run")
		switch {
		case i == 0 || i >= len(network.Names)-opts.spares:
			n.RunDir = "/run/regente" // private to the node's mount namespace
		case opts.agentCgroup != nil:
			n.Cgroup, n.Wrap = opts.agentCgroup(t, name)
		default:
			// Before the cleanup below, so removed after the nodes stop.
			cgroup, remove, err := nscluster.CgroupRoot("rg-" + name)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(remove)
			n.Cgroup = cgroup
		}
		imagesDir := filepath.Join(n.DataDir, "agent", "images")
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
	c.server, c.agents, c.spares = nodes[0], nodes[1:len(nodes)-opts.spares], nodes[len(nodes)-opts.spares:]
	t.Cleanup(func() {
		saveLogsOnFailure(t, "multinode", nodes)
		// Agents first: their pods talk to the server as they stop.
		for _, n := range slices.Concat(c.agents, c.spares, []*nscluster.Node{c.server}) {
			c.stop(n)
		}
		for _, n := range nodes {
			killall.Node(n.DataDir, n.RunDir)
		}
	})

	serverKubeconfig := filepath.Join(c.server.Dir, "admin.yaml")
	c.server.Args = append(c.serverArgs(c.server, "srv"), serverArgs...)
	wantReady := len(nodes) - opts.spares
	if slices.Contains(serverArgs, "--disable-agent") {
		wantReady--
	}
	c.start(c.server)
	token := filepath.Join(c.server.DataDir, "server", "token")
	eventually(t, 90*time.Second, "server writes its kubeconfig and token", func() error {
		c.failIfExited(c.server)
		cfg, err := os.ReadFile(serverKubeconfig)
		if err != nil {
			return err
		}
		if _, err := os.Stat(token); err != nil {
			return err
		}
		// The kubeconfig names the server's loopback; from here it is
		// the server's netns address, which its certificate holds.
		rewritten := strings.ReplaceAll(string(cfg), "https://127.0.0.1:6443", "https://"+c.server.IP+":6443")
		return os.WriteFile(c.kubeconfig, []byte(rewritten), 0o600)
	})
	for i, a := range c.agents {
		// Each agent announces an external address (TEST-NET-3: never
		// contacted) for the cloud node controller to publish.
		a.Args = c.agentArgs(a, "--token-file", token, fmt.Sprintf("--node-external-ip=203.0.113.%d", 11+i))
		c.start(a)
	}
	eventually(t, 3*time.Minute, "every node Ready", func() error {
		c.failIfExited(nodes...)
		out, err := c.kubectlErr("get", "nodes", "-o", `jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status} {end}`)
		if err != nil || strings.Count(out, "=True") != wantReady {
			return fmt.Errorf("nodes: %q (%v)", out, err)
		}
		return nil
	})
	return c
}

// serverArgs is the command line of a server on node n, named name, that
// writes its admin kubeconfig to <n.Dir>/admin.yaml.
func (c *mnCluster) serverArgs(n *nscluster.Node, name string) []string {
	return []string{c.bin, "server", "--config", "", "--data-dir", n.DataDir,
		"--node-name", name, "--node-ip", n.IP, "--write-kubeconfig", filepath.Join(n.Dir, "admin.yaml"),
		"--disable", "metrics-server,servicelb,local-storage,ingress",
		// NotReady nodes are noticed in 20 s instead of 50 s.
		"--kube-controller-manager-arg=node-monitor-grace-period=20s", nscluster.KubeletEvictionArg}
}

// token runs `regente token` against the cluster.
func (c *mnCluster) token(args ...string) string {
	c.t.Helper()
	args = append([]string{"token"}, args...)
	args = append(args, "--kubeconfig", c.kubeconfig, "--data-dir", c.server.DataDir)
	out, err := exec.Command(c.bin, args...).CombinedOutput()
	if err != nil {
		c.t.Fatalf("regente %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func (c *mnCluster) agentArgs(a *nscluster.Node, extra ...string) []string {
	return append([]string{c.bin, "agent", "--config", "", "--data-dir", a.DataDir, "--run-dir", a.RunDir,
		"--node-name", a.Name, "--node-ip", a.IP, "--server", "https://" + c.server.IP + ":6443",
		"--kubelet-arg=cgroup-root=" + a.Cgroup, nscluster.KubeletEvictionArg}, extra...)
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
	c := newCluster(t, bin, map[string][]byte{"busybox.tar": busyboxImage(t, image)}, mnNet)

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

	t.Run("node addresses and initialization by the cloud node controller", func(t *testing.T) {
		eventually(t, 30*time.Second, "addresses published, uninitialized taint lifted", func() error {
			out := c.kubectl("get", "nodes", "-o", `jsonpath={range .items[*]}{.metadata.name}:{range .status.addresses[*]}{.type}={.address},{end}:{.spec.taints}{"\n"}{end}`)
			for _, want := range []string{
				"a1:InternalIP=" + c.agents[0].IP + ",ExternalIP=203.0.113.11,Hostname=a1,:",
				"a2:InternalIP=" + c.agents[1].IP + ",ExternalIP=203.0.113.12,Hostname=a2,:",
				"srv:InternalIP=" + c.server.IP + ",Hostname=srv,:",
			} {
				if !strings.Contains(out, want) {
					return fmt.Errorf("want %q in:\n%s", want, out)
				}
			}
			if strings.Contains(out, "node.cloudprovider.kubernetes.io/uninitialized") {
				return fmt.Errorf("a node is still uninitialized:\n%s", out)
			}
			return nil
		})
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
		for _, n := range append([]*nscluster.Node{c.server}, c.agents...) {
			eventually(t, 30*time.Second, "NodePort on "+n.Name, func() error {
				return httpGetNonEmpty("http://" + n.IP + ":30080/")
			})
		}
	})

	t.Run("NetworkPolicy: default deny, then an allow rule", func(t *testing.T) {
		if !nftQueueSupported(t) {
			// The nodes fall back to iptables NFQUEUE, and say so.
			for _, n := range append([]*nscluster.Node{c.server}, c.agents...) {
				if !strings.Contains(n.Log.String(), "NetworkPolicy is enforced through iptables NFQUEUE instead") {
					t.Errorf("%s does not report the iptables fallback on this kernel without nft_queue", n.Name)
				}
			}
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
		tokenFile := filepath.Join(c.server.DataDir, "server", "token")
		raw, err := os.ReadFile(tokenFile)
		if err != nil {
			t.Fatal(err)
		}
		good := strings.TrimSpace(string(raw))
		hash, _, _ := strings.Cut(strings.TrimPrefix(good, "K10"), "::")
		c.kubectl("-n", "kube-system", "create", "secret", "generic", "bootstrap-token-expire",
			"--type=bootstrap.kubernetes.io/token", "--from-literal=token-id=expire", "--from-literal=token-secret=0123456789abcdef",
			"--from-literal=usage-bootstrap-authentication=true", "--from-literal=expiration=2000-01-01T00:00:00Z")
		server := "https://" + c.server.IP + ":6443"
		for _, tc := range []struct{ what, server, token, node, want string }{
			{"wrong CA hash", server, "K10" + strings.Repeat("0", 64) + "::server:whatever", "x1", "is not the one the token pins"},
			{"wrong secret", server, "K10" + hash + "::server:wrong", "x2", "secret does not match"},
			{"expired bootstrap token", server, "K10" + hash + "::expire.0123456789abcdef", "x3", "expired"},
			{"token without a CA hash", server, "expire.0123456789abcdef", "x4", "has no CA hash"},
			{"plain http server URL", "http://" + c.server.IP + ":6443", good, "x5", "must be an https:// URL"},
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
			"--server", "https://"+mnNet.Subnet+".9:6443", "--token", good, "--node-name", "x6")
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
		c.stop(a2)
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
		a2.Args = c.agentArgs(a2, "--token", strings.TrimSpace(created))
		c.kubectl("delete", "node", "a2")
		if err := os.Remove(filepath.Join(a2.DataDir, "agent", "node-password")); err != nil {
			t.Fatal(err)
		}
		eventually(t, 30*time.Second, "a2's node password is released", func() error {
			if _, err := c.kubectlErr("-n", "kube-system", "get", "secret", "a2.node-password.regente"); err == nil {
				return fmt.Errorf("still there")
			}
			return nil
		})
		c.start(a2)
		eventually(t, 120*time.Second, "a2 Ready again", func() error {
			c.failIfExited(a2)
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

// TestDedicatedControlPlane runs a server without a node and one agent:
// the control plane reaches the agent's kubelet (logs, exec) and the
// add-ons run on the agent.
func TestDedicatedControlPlane(t *testing.T) {
	bin := requirements(t)
	const image = "regente.invalid/busybox:test"
	network := nscluster.Network{Bridge: mnNet.Bridge, Subnet: mnNet.Subnet, Names: []string{"srv", "a1"}}
	c := newCluster(t, bin, map[string][]byte{"busybox.tar": busyboxImage(t, image)}, network, "--disable-agent")
	if out := c.kubectl("get", "nodes", "-o", "name"); strings.TrimSpace(out) != "node/a1" {
		t.Errorf("nodes: %q, want only the agent", out)
	}
	c.kubectl("run", "hello", "--image="+image, "--image-pull-policy=Never", "--", "sh", "-c", "echo hello-from-a1; exec sleep 3600")
	c.kubectl("wait", "pod/hello", "--for=condition=Ready", "--timeout=60s")
	eventually(t, 30*time.Second, "logs through the control plane", func() error {
		if out, err := c.kubectlErr("logs", "hello"); err != nil || !strings.Contains(out, "hello-from-a1") {
			return fmt.Errorf("logs %q: %v", out, err)
		}
		return nil
	})
	c.kubectl("-n", "kube-system", "rollout", "status", "deployment/coredns", "--timeout=120s")
	eventually(t, 60*time.Second, "DNS on the agent", func() error {
		out, err := c.kubectlErr("exec", "hello", "--", "nslookup", "kubernetes.default.svc.cluster.local")
		if err != nil || !strings.Contains(out, "Address: 10.43.0.1") {
			return fmt.Errorf("nslookup: %q: %v", out, err)
		}
		return nil
	})
}

// saveLogsOnFailure writes the nodes' logs to the temp dir when t failed,
// since they are too long for the test output.
func saveLogsOnFailure(t *testing.T, prefix string, nodes []*nscluster.Node) {
	if !t.Failed() {
		return
	}
	for _, n := range nodes {
		if n.Log != nil {
			os.WriteFile(filepath.Join(os.TempDir(), "regente-"+prefix+"-"+n.Name+".log"), []byte(n.Log.String()), 0o600)
		}
	}
	t.Logf("node logs: %s/regente-%s-*.log", os.TempDir(), prefix)
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
