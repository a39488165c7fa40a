package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
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
)

const benchImage = "regente.invalid/busybox:bench"

// benchAgent measures the node: time to node Ready (first unpack and warm
// restart), pod start latency over 20 pods, and the RSS of the whole
// process tree with one pod after idling.
func benchAgent(bin string, runs int, idle time.Duration) ([]row, error) {
	var cold, warm, addonsCold, addonsWarm []time.Duration
	for i := 0; i < runs; i++ {
		s, err := newInstance(bin)
		if err != nil {
			return nil, err
		}
		s.agent = true
		if err := writeBenchImage(s); err != nil {
			return nil, err
		}
		begin := time.Now()
		d, err := s.startToNodeReady()
		if err != nil {
			return nil, fmt.Errorf("cold node start: %w", err)
		}
		cold = append(cold, d)
		a, err := s.addonsReady(begin)
		if err != nil {
			return nil, fmt.Errorf("add-ons after a cold start: %w", err)
		}
		addonsCold = append(addonsCold, a)
		s.stop()
		begin = time.Now()
		if d, err = s.startToNodeReady(); err != nil {
			return nil, fmt.Errorf("warm node start: %w", err)
		}
		warm = append(warm, d)
		if a, err = s.addonsReady(begin); err != nil {
			return nil, fmt.Errorf("add-ons after a warm start: %w", err)
		}
		addonsWarm = append(addonsWarm, a)
		fmt.Fprintf(os.Stderr, "node run %d: cold %s (add-ons %s) warm %s (add-ons %s)\n", i+1, cold[i].Round(time.Millisecond),
			addonsCold[i].Round(time.Millisecond), warm[i].Round(time.Millisecond), addonsWarm[i].Round(time.Millisecond))
		if i < runs-1 {
			s.stop()
			cleanupNode(s)
		} else {
			defer cleanupNode(s)
			defer s.stop()
			rows, err := measureNode(s, cold, warm, idle)
			return append(rows,
				row{fmt.Sprintf("add-ons (CoreDNS, metrics-server, local-path, ingress) Ready, cold start (median of %d)", len(addonsCold)), median(addonsCold).Round(time.Millisecond).String(), "-"},
				row{fmt.Sprintf("add-ons Ready, warm start (median of %d)", len(addonsWarm)), median(addonsWarm).Round(time.Millisecond).String(), "≤ 30s"},
			), err
		}
	}
	return nil, fmt.Errorf("no runs")
}

func measureNode(s *instance, cold, warm []time.Duration, idle time.Duration) ([]row, error) {
	rows := []row{
		{fmt.Sprintf("node Ready, cold start with first unpack (median of %d)", len(cold)), median(cold).Round(time.Millisecond).String(), "-"},
		{fmt.Sprintf("node Ready, warm start (median of %d)", len(warm)), median(warm).Round(time.Millisecond).String(), "≤ 10s"},
	}
	client, err := s.client()
	if err != nil {
		return nil, err
	}
	var lat []time.Duration
	for i := 0; i < 20; i++ {
		d, err := startPod(client, fmt.Sprintf("bench-%d", i))
		if err != nil {
			return nil, err
		}
		lat = append(lat, d)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	rows = append(rows, row{"pod start latency, create → Running, image present (20 pods)",
		fmt.Sprintf("p50 %s, p99 %s", lat[len(lat)/2].Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond)), "p50 ≤ 1.5s"})
	for i := 1; i < 20; i++ {
		client.CoreV1().Pods("default").Delete(context.Background(), fmt.Sprintf("bench-%d", i), metav1.DeleteOptions{GracePeriodSeconds: new(int64)})
	}
	fmt.Fprintf(os.Stderr, "idling %s with one pod for the tree RSS\n", idle)
	time.Sleep(idle)
	tree := treeMemory(s.cmd.Process.Pid, s.dir)
	pods := podMemory()
	return append(rows,
		row{fmt.Sprintf("RSS of regente + containerd + shims, one pod, after %s idle", idle), mib(tree["Rss"]), "≤ 450 MiB"},
		row{"  of which anonymous (heap, stacks)", mib(tree["Anonymous"]), "-"},
		row{"  of which file-backed (binary pages, shared, reclaimable)", mib(tree["Rss"] - tree["Anonymous"]), "-"},
		row{"  same tree as PSS (shared binary pages counted once)", mib(tree["Pss"]), "-"},
		row{"RSS of the pods' processes (add-ons and the one bench pod)", mib(pods["Rss"]), "-"},
	), nil
}

func (s *instance) client() (*kubernetes.Clientset, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", s.kubeconfig)
	if err != nil {
		return nil, err
	}
	cfg.QPS, cfg.Burst = 100, 100
	return kubernetes.NewForConfig(cfg)
}

// startToNodeReady starts regente and returns the time until its node is Ready.
func (s *instance) startToNodeReady() (time.Duration, error) {
	begin := time.Now()
	if _, err := s.start(); err != nil {
		return 0, err
	}
	client, err := s.client()
	if err != nil {
		return 0, err
	}
	for time.Since(begin) < 3*time.Minute {
		nodes, err := client.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{})
		if err == nil && len(nodes.Items) == 1 {
			for _, c := range nodes.Items[0].Status.Conditions {
				// A restart reuses the node object: Ready must be newer than this start.
				if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue && c.LastHeartbeatTime.After(begin) {
					return time.Since(begin), nil
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return 0, fmt.Errorf("node not Ready after 3m; see %s/server.log", s.dir)
}

func startPod(client *kubernetes.Clientset, name string) (time.Duration, error) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "main", Image: benchImage, ImagePullPolicy: corev1.PullNever,
			Command: []string{"/bin/busybox", "sleep", "86400"},
		}}},
	}
	begin := time.Now()
	if _, err := client.CoreV1().Pods("default").Create(context.Background(), pod, metav1.CreateOptions{}); err != nil {
		return 0, err
	}
	for time.Since(begin) < time.Minute {
		p, err := client.CoreV1().Pods("default").Get(context.Background(), name, metav1.GetOptions{})
		if err == nil && p.Status.Phase == corev1.PodRunning {
			return time.Since(begin), nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return 0, fmt.Errorf("pod %s not Running after 1m", name)
}

// writeBenchImage puts the busybox image of the pods the bench starts in
// the images dir of s, for its node to import.
func writeBenchImage(s *instance) error {
	dir := datadir.New(filepath.Join(s.dir, "data"), "").Agent.ImagesDir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return writeBenchImageTo(filepath.Join(dir, "busybox.tar"))
}

// writeBenchImageTo writes the busybox image archive to path.
func writeBenchImageTo(path string) error {
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		return fmt.Errorf("busybox not found: install Debian's busybox-static")
	}
	data, err := os.ReadFile(busybox)
	if err != nil {
		return err
	}
	return ociarchive.WriteFile(path, ociarchive.Image{Name: benchImage,
		Entrypoint: []string{"/bin/busybox"}, Files: []ociarchive.File{{Path: "/bin/busybox", Mode: 0o755, Data: data}}})
}

// addonsReady waits until every add-on Deployment in kube-system has all
// its replicas ready and returns the time since begin.
// addonDeployments are the add-ons that run as Deployments (servicelb runs
// only for LoadBalancer Services).
var addonDeployments = []string{"coredns", "metrics-server", "local-path-provisioner", "ingress"}

func (s *instance) addonsReady(begin time.Time) (time.Duration, error) {
	client, err := s.client()
	if err != nil {
		return 0, err
	}
	for time.Since(begin) < 3*time.Minute {
		ready := 0
		for _, name := range addonDeployments {
			d, err := client.AppsV1().Deployments("kube-system").Get(context.Background(), name, metav1.GetOptions{})
			if err == nil && d.Status.ObservedGeneration >= d.Generation && d.Status.ReadyReplicas > 0 && d.Status.ReadyReplicas == d.Status.Replicas {
				ready++
			}
		}
		if ready == len(addonDeployments) {
			return time.Since(begin), nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return 0, fmt.Errorf("add-ons not Ready after 3m; see %s/server.log", s.dir)
}

// podMemory adds up the smaps_rollup fields of every process in a pod's
// cgroup.
func podMemory() map[string]int64 {
	sum := map[string]int64{}
	procs, _ := filepath.Glob("/proc/[0-9]*/cgroup")
	for _, p := range procs {
		cgroup, _ := os.ReadFile(p)
		n, err := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		if err != nil || !strings.Contains(string(cgroup), "kubepods") {
			continue
		}
		if m, err := memoryOf(n); err == nil {
			for k, v := range m {
				sum[k] += v
			}
		}
	}
	return sum
}

// treeMemory adds up the smaps_rollup fields (Rss, Pss, Anonymous, ...) of
// regente, its containerd child, and the shims running from this data dir.
// RSS counts the binary's pages once per process that maps them; PSS
// splits them between those processes.
func treeMemory(pid int, dir string) map[string]int64 {
	sum := map[string]int64{}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		n, err := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		if err != nil {
			continue
		}
		cmd, _ := os.ReadFile(p)
		if n == pid || strings.Contains(string(cmd), dir) || isChildOf(n, pid) {
			if m, err := memoryOf(n); err == nil {
				for k, v := range m {
					sum[k] += v
				}
			}
		}
	}
	return sum
}

func isChildOf(pid, parent int) bool {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "PPid:"); ok {
			return strings.TrimSpace(v) == strconv.Itoa(parent)
		}
	}
	return false
}

// cleanupNode ends what outlives regente by design and removes the run's
// files, so the next run starts clean.
func cleanupNode(s *instance) {
	killall.Node(filepath.Join(s.dir, "data"), "/run/regente")
	os.RemoveAll(s.dir)
}
