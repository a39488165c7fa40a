package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
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

// benchMultiNode joins an agent to a server, each in its own network
// namespace, and measures the join and pod-to-pod networking on one node
// and across the vxlan between them.
func benchMultiNode(bin string) ([]row, error) {
	net := nscluster.Network{Bridge: "rgbench0", Subnet: "10.98.0", Names: []string{"srv", "a1"}}
	if err := net.Setup(); err != nil {
		return nil, err
	}
	defer net.Teardown()
	root, err := os.MkdirTemp("", "regente-bench-mn-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(root)
	image, err := netperfArchive(root)
	if err != nil {
		return nil, err
	}
	cgroup, removeCgroup, err := nscluster.CgroupRoot("rg-bench-a1")
	if err != nil {
		return nil, err
	}
	defer removeCgroup()
	srv := &nscluster.Node{Name: "srv", IP: net.IP(0), Dir: filepath.Join(root, "srv"), RunDir: "/run/regente"}
	a1 := &nscluster.Node{Name: "a1", IP: net.IP(1), Dir: filepath.Join(root, "a1"), Cgroup: cgroup}
	for _, n := range []*nscluster.Node{srv, a1} {
		n.DataDir = filepath.Join(n.Dir, "data")
		if n.RunDir == "" {
			n.RunDir = filepath.Join(n.Dir, "run")
		}
		images := datadir.New(n.DataDir, "").Agent.ImagesDir
		if err := os.MkdirAll(images, 0o700); err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(images, "netperf.tar"), image, 0o600); err != nil {
			return nil, err
		}
	}
	defer func() {
		a1.Stop(30 * time.Second)
		srv.Stop(30 * time.Second)
		killall.Node(a1.DataDir, a1.RunDir)
		killall.Node(srv.DataDir, srv.RunDir)
	}()

	serverKubeconfig := filepath.Join(srv.Dir, "admin.yaml")
	srv.Args = []string{bin, "server", "--config", "", "--data-dir", srv.DataDir, "--node-name", "srv", "--node-ip", srv.IP,
		"--write-kubeconfig", serverKubeconfig, "--disable", "metrics-server,servicelb,local-storage", nscluster.KubeletEvictionArg}
	if err := srv.Start(); err != nil {
		return nil, err
	}
	kubeconfig := filepath.Join(root, "kubeconfig")
	token := datadir.New(srv.DataDir, "").Server.TokenFile
	if err := waitFor(2*time.Minute, "the server's kubeconfig and token", func() bool {
		cfg, err := os.ReadFile(serverKubeconfig)
		if _, terr := os.Stat(token); err != nil || terr != nil {
			return false
		}
		rewritten := strings.ReplaceAll(string(cfg), "https://127.0.0.1:6443", "https://"+srv.IP+":6443")
		return os.WriteFile(kubeconfig, []byte(rewritten), 0o600) == nil
	}); err != nil {
		return nil, fmt.Errorf("%w\n%s", err, srv.Log.String())
	}
	restCfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, err
	}
	client, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return nil, err
	}
	if err := waitFor(2*time.Minute, "the server's node Ready", func() bool { return nodeReady(client, "srv") }); err != nil {
		return nil, err
	}

	a1.Args = []string{bin, "agent", "--config", "", "--data-dir", a1.DataDir, "--run-dir", a1.RunDir, "--node-name", "a1",
		"--node-ip", a1.IP, "--server", "https://" + srv.IP + ":6443", "--token-file", token, "--kubelet-arg=cgroup-root=" + cgroup, nscluster.KubeletEvictionArg}
	begin := time.Now()
	if err := a1.Start(); err != nil {
		return nil, err
	}
	if err := waitFor(2*time.Minute, "the agent's node Ready", func() bool { return nodeReady(client, "a1") }); err != nil {
		return nil, fmt.Errorf("%w\n%s", err, a1.Log.String())
	}
	joined := time.Since(begin)
	fmt.Fprintf(os.Stderr, "agent joined and Ready in %s\n", joined.Round(time.Millisecond))

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
