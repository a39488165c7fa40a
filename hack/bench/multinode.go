package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"regente.io/regente/pkg/datadir"
	"regente.io/regente/pkg/killall"
	"regente.io/regente/pkg/ociarchive"
	"regente.io/regente/tests/nscluster"
)

const netperfImage = "regente.invalid/netperf:bench"

// benchCluster is a server and an agent (a1), each in its own network
// namespace, the agent joined to the server.
type benchCluster struct {
	net        nscluster.Network
	root       string
	srv, a1    *nscluster.Node
	kubeconfig string // the server's admin kubeconfig, at its bridge address
	client     *kubernetes.Clientset
	joined     time.Duration // from the agent's start to its node Ready
	cleanups   []func()
}

// benchClusterOptions says how the two nodes run.
type benchClusterOptions struct {
	bridge, subnet string
	images         map[string][]byte // image archives both nodes import at start
	serverArgs     []string          // more server flags; --disable-agent leaves the server without a node
	// agentCgroup is the agent kubelet's cgroup root and agentWrap the
	// argv prefix the agent runs under; by default a cgroup of its own.
	agentCgroup string
	agentWrap   []string
}

// startBenchCluster starts the server, then the agent, and waits for
// their nodes Ready. Close stops both and removes what they left.
func startBenchCluster(bin string, o benchClusterOptions) (c *benchCluster, err error) {
	c = &benchCluster{net: nscluster.Network{Bridge: o.bridge, Subnet: o.subnet, Names: []string{"srv", "a1"}}}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	if err := c.net.Setup(); err != nil {
		return nil, err
	}
	c.cleanups = append(c.cleanups, c.net.Teardown)
	if c.root, err = os.MkdirTemp("", "regente-bench-mn-"); err != nil {
		return nil, err
	}
	c.cleanups = append(c.cleanups, func() { os.RemoveAll(c.root) })
	if o.agentCgroup == "" {
		cgroup, removeCgroup, err := nscluster.CgroupRoot("rg-bench-a1")
		if err != nil {
			return nil, err
		}
		c.cleanups = append(c.cleanups, removeCgroup)
		o.agentCgroup = cgroup
	}
	c.srv = &nscluster.Node{Name: "srv", IP: c.net.IP(0), Dir: filepath.Join(c.root, "srv"), RunDir: "/run/regente"}
	c.a1 = &nscluster.Node{Name: "a1", IP: c.net.IP(1), Dir: filepath.Join(c.root, "a1"), Cgroup: o.agentCgroup, Wrap: o.agentWrap}
	for _, n := range []*nscluster.Node{c.srv, c.a1} {
		n.DataDir = filepath.Join(n.Dir, "data")
		if n.RunDir == "" {
			n.RunDir = filepath.Join(n.Dir, "run")
		}
		images := datadir.New(n.DataDir, "").Agent.ImagesDir
		if err := os.MkdirAll(images, 0o700); err != nil {
			return nil, err
		}
		for name, archive := range o.images {
			if err := os.WriteFile(filepath.Join(images, name), archive, 0o600); err != nil {
				return nil, err
			}
		}
	}
	c.cleanups = append(c.cleanups, func() {
		c.a1.Stop(30 * time.Second)
		c.srv.Stop(30 * time.Second)
		killall.Node(c.a1.DataDir, c.a1.RunDir)
		killall.Node(c.srv.DataDir, c.srv.RunDir)
	})

	serverKubeconfig := filepath.Join(c.srv.Dir, "admin.yaml")
	c.srv.Args = append([]string{bin, "server", "--config", "", "--data-dir", c.srv.DataDir, "--node-name", "srv", "--node-ip", c.srv.IP,
		"--write-kubeconfig", serverKubeconfig, "--disable", "metrics-server,servicelb,local-storage,ingress", nscluster.KubeletEvictionArg}, o.serverArgs...)
	if err := c.srv.Start(); err != nil {
		return nil, err
	}
	c.kubeconfig = filepath.Join(c.root, "kubeconfig")
	token := datadir.New(c.srv.DataDir, "").Server.TokenFile
	if err := waitFor(2*time.Minute, "the server's kubeconfig and token", func() bool {
		cfg, err := os.ReadFile(serverKubeconfig)
		if _, terr := os.Stat(token); err != nil || terr != nil {
			return false
		}
		rewritten := strings.ReplaceAll(string(cfg), "https://127.0.0.1:6443", "https://"+c.srv.IP+":6443")
		return os.WriteFile(c.kubeconfig, []byte(rewritten), 0o600) == nil
	}); err != nil {
		return nil, fmt.Errorf("%w\n%s", err, c.srv.Log.String())
	}
	restCfg, err := clientcmd.BuildConfigFromFlags("", c.kubeconfig)
	if err != nil {
		return nil, err
	}
	if c.client, err = kubernetes.NewForConfig(restCfg); err != nil {
		return nil, err
	}
	if !slices.Contains(o.serverArgs, "--disable-agent") {
		if err := waitFor(2*time.Minute, "the server's node Ready", func() bool { return nodeReady(c.client, "srv") }); err != nil {
			return nil, err
		}
	}

	c.a1.Args = []string{bin, "agent", "--config", "", "--data-dir", c.a1.DataDir, "--run-dir", c.a1.RunDir, "--node-name", "a1",
		"--node-ip", c.a1.IP, "--server", "https://" + c.srv.IP + ":6443", "--token-file", token, "--kubelet-arg=cgroup-root=" + o.agentCgroup, nscluster.KubeletEvictionArg}
	begin := time.Now()
	if err := c.a1.Start(); err != nil {
		return nil, err
	}
	if err := waitFor(2*time.Minute, "the agent's node Ready", func() bool { return nodeReady(c.client, "a1") }); err != nil {
		return nil, fmt.Errorf("%w\n%s", err, c.a1.Log.String())
	}
	c.joined = time.Since(begin)
	fmt.Fprintf(os.Stderr, "agent joined and Ready in %s\n", c.joined.Round(time.Millisecond))
	return c, nil
}

// Close stops the nodes and removes their network, dirs and cgroup.
func (c *benchCluster) Close() {
	for i := len(c.cleanups) - 1; i >= 0; i-- {
		c.cleanups[i]()
	}
}

// benchMultiNode joins an agent to a server, each in its own network
// namespace, and measures the join and pod-to-pod networking on one node
// and across the vxlan between them.
func benchMultiNode(bin string) ([]row, error) {
	scratch, err := os.MkdirTemp("", "regente-bench-netperf-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(scratch)
	image, err := netperfArchive(scratch)
	if err != nil {
		return nil, err
	}
	c, err := startBenchCluster(bin, benchClusterOptions{bridge: "rgbench0", subnet: "10.98.0", images: map[string][]byte{"netperf.tar": image}})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	client, kubeconfig, joined := c.client, c.kubeconfig, c.joined

	// Two netperf servers (one per node) and a client on the server's node.
	ips := map[string]string{}
	for _, p := range []struct{ name, node string }{{"perf-srv", "srv"}, {"perf-a1", "a1"}, {"perf-client", "srv"}} {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: p.name},
			Spec: corev1.PodSpec{NodeName: p.node, Containers: []corev1.Container{{
				Name: "netperf", Image: netperfImage, ImagePullPolicy: corev1.PullNever,
				Command: []string{"/netperf", "serve", ":5201"},
			}}},
		}
		if _, err := client.CoreV1().Pods("default").Create(context.Background(), pod, metav1.CreateOptions{}); err != nil {
			return nil, err
		}
		if err := waitFor(time.Minute, p.name+" Running", func() bool {
			got, err := client.CoreV1().Pods("default").Get(context.Background(), p.name, metav1.GetOptions{})
			if err != nil || got.Status.Phase != corev1.PodRunning || got.Status.PodIP == "" {
				return false
			}
			ips[p.name] = got.Status.PodIP
			return true
		}); err != nil {
			return nil, err
		}
	}
	rows := []row{{"agent join → node Ready (first start: payload unpack, join, CNI)", joined.Round(time.Millisecond).String(), "-"}}
	for _, path := range []struct{ what, target string }{{"same node", "perf-srv"}, {"across vxlan", "perf-a1"}} {
		addr := ips[path.target] + ":5201"
		out, err := kubectlExec(bin, kubeconfig, "perf-client", "/netperf", "rtt", addr, "2000")
		if err != nil {
			return nil, err
		}
		m := regexp.MustCompile(`rtt p50=(\d+) p99=(\d+)`).FindStringSubmatch(out)
		if m == nil {
			return nil, fmt.Errorf("netperf rtt: %q", out)
		}
		p50, _ := strconv.Atoi(m[1])
		p99, _ := strconv.Atoi(m[2])
		rows = append(rows, row{"pod-to-pod TCP round trip, " + path.what, fmt.Sprintf("p50 %dµs, p99 %dµs", p50, p99), "-"})
		out, err = kubectlExec(bin, kubeconfig, "perf-client", "/netperf", "tput", addr, "5")
		if err != nil {
			return nil, err
		}
		m = regexp.MustCompile(`tput (\d+)`).FindStringSubmatch(out)
		if m == nil {
			return nil, fmt.Errorf("netperf tput: %q", out)
		}
		rows = append(rows, row{"pod-to-pod TCP throughput, " + path.what + " (one stream, 5 s)", m[1] + " Mbit/s", "-"})
	}
	return rows, nil
}

// netperfArchive builds the netperf probe statically and packs it as an
// image archive with our own OCI writer.
func netperfArchive(dir string) ([]byte, error) {
	out := filepath.Join(dir, "netperf")
	build := exec.Command("go", "build", "-o", out, "./hack/bench/netperf")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build netperf: %v: %s", err, b)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		return nil, err
	}
	archive := filepath.Join(dir, "netperf.tar")
	if err := ociarchive.WriteFile(archive, ociarchive.Image{Name: netperfImage, Entrypoint: []string{"/netperf"},
		Files: []ociarchive.File{{Path: "/netperf", Mode: 0o755, Data: data}}}); err != nil {
		return nil, err
	}
	return os.ReadFile(archive)
}

func kubectlExec(bin, kubeconfig, pod string, command ...string) (string, error) {
	args := append([]string{"kubectl", "--kubeconfig", kubeconfig, "exec", pod, "--"}, command...)
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("kubectl exec %s %v: %v: %s", pod, command, err, out)
	}
	return string(out), nil
}

func nodeReady(client *kubernetes.Clientset, name string) bool {
	node, err := client.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		return false
	}
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func waitFor(timeout time.Duration, what string, ok func() bool) error {
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not after %s", what, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil
}
