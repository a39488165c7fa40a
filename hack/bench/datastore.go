package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"regente.io/regente/pkg/datadir"
	"regente.io/regente/tests/dbserver"
	"regente.io/regente/tests/nscluster"
)

// snapshotObjects is how many ConfigMaps the snapshot figures are taken
// with.
const snapshotObjects = 10000

// datastoreResult is one column of the side-by-side table.
type datastoreResult struct {
	name                         string
	c1, c16, list, watch         string
	snapshot, snapshotSize, rest string
	objects                      int // ConfigMaps in the datastore at the snapshot
}

// benchDatastores runs the same API workload on every datastore regente
// supports, one after another in this run, and prints them as one table.
// picked is -datastores: which of sqlite, etcd, etcd3, postgres and mariadb
// to run ("" runs all).
func benchDatastores(bin string, writes time.Duration, picked string) error {
	runs := func(name string) bool { return picked == "" || slices.Contains(strings.Split(picked, ","), name) }
	var results []datastoreResult
	add := func(name string, r datastoreResult, err error) error {
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		r.name = name
		results = append(results, r)
		fmt.Fprintf(os.Stderr, "datastore %s done\n", name)
		return nil
	}
	for _, single := range []struct {
		key, name string
		extra     []string
	}{{"sqlite", "SQLite (kine)", nil}, {"etcd", "embedded etcd, 1 member", []string{"--cluster-init"}}} {
		if !runs(single.key) {
			continue
		}
		r, err := benchSingleServer(bin, writes, single.extra, true)
		if err := add(single.name, r, err); err != nil {
			return err
		}
	}
	if runs("etcd3") {
		r, err := benchEtcdCluster(bin, writes)
		if err := add("embedded etcd, 3 members", r, err); err != nil {
			return err
		}
	}
	if runs("postgres") {
		pg, err := dbserver.Postgres("127.0.0.1", 15433)
		if err != nil {
			return err
		}
		r, err := benchSingleServer(bin, writes, []string{"--datastore-endpoint", "postgres://postgres@127.0.0.1:15433/regente?sslmode=disable"}, false)
		pg.Stop()
		if err := add("PostgreSQL 15 (kine)", r, err); err != nil {
			return err
		}
	}
	if runs("mariadb") {
		my, err := dbserver.MariaDB("127.0.0.1", 13307, "bench-pw")
		if err != nil {
			return err
		}
		r, err := benchSingleServer(bin, writes, []string{"--datastore-endpoint", "mysql://regente:bench-pw@tcp(127.0.0.1:13307)/regente"}, false)
		my.Stop()
		if err := add("MariaDB 10.11 (kine)", r, err); err != nil {
			return err
		}
	}

	fmt.Printf("\n| datastore | creates, concurrency 1 | creates, concurrency 16 | list %d ConfigMaps (median of 5) | watch event delay p99 | snapshot (≥ %d objects) | snapshot size | restore into a fresh data dir |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n", snapshotObjects, snapshotObjects)
	for _, r := range results {
		fmt.Printf("| %s | %s | %s | %s | %s | %s | %s | %s |\n", r.name, r.c1, r.c16, r.list, r.watch, or(r.snapshot), or(r.snapshotSize), or(r.rest))
	}
	return nil
}

// benchSingleServer measures one server with extra flags; with snapshots,
// it also saves a snapshot of snapshotObjects ConfigMaps and restores it
// into a fresh data dir.
func benchSingleServer(bin string, writes time.Duration, extra []string, snapshots bool) (datastoreResult, error) {
	s, err := newInstance(bin)
	if err != nil {
		return datastoreResult{}, err
	}
	defer os.RemoveAll(s.dir)
	s.extra = extra
	if _, err := s.start(); err != nil {
		return datastoreResult{}, err
	}
	defer s.stop()
	r, err := apiWorkload(s.kubeconfig, writes)
	if err != nil || !snapshots {
		return r, err
	}
	dataDir := filepath.Join(s.dir, "data")
	begin := time.Now()
	out, err := exec.Command(bin, "etcd-snapshot", "save", "--data-dir", dataDir, "--name", "bench").CombinedOutput()
	if err != nil {
		return r, fmt.Errorf("etcd-snapshot save: %v: %s", err, out)
	}
	r.snapshot = time.Since(begin).Round(time.Millisecond).String()
	file := filepath.Join(datadir.New(dataDir, "").Server.SnapshotDir, "bench.db")
	fi, err := os.Stat(file)
	if err != nil {
		return r, err
	}
	r.snapshotSize = fmt.Sprintf("%.1f MiB (%d ConfigMaps in all)", float64(fi.Size())/(1<<20), r.objects)
	s.stop()
	fresh := filepath.Join(s.dir, "restored")
	begin = time.Now()
	token, err := os.ReadFile(datadir.New(dataDir, "").Server.TokenFile)
	if err != nil {
		return r, err
	}
	args := append([]string{"server", "--config", "", "--data-dir", fresh, "--cluster-reset", "--cluster-reset-restore-path", file, "--token", strings.TrimSpace(string(token))}, extra...)
	if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
		return r, fmt.Errorf("restore: %v: %s", err, out)
	}
	r.rest = time.Since(begin).Round(time.Millisecond).String()
	return r, nil
}

// benchEtcdCluster measures three servers on embedded etcd, each in its
// own network namespace, through the first.
func benchEtcdCluster(bin string, writes time.Duration) (datastoreResult, error) {
	var r datastoreResult
	err := etcdCluster(bin, nil, func(kubeconfig string, _ []*nscluster.Node) error {
		var err error
		r, err = apiWorkload(kubeconfig, writes)
		r.snapshot, r.snapshotSize, r.rest = "as 1 member", "as 1 member", "as 1 member"
		return err
	})
	return r, err
}

// etcdCluster starts three servers on embedded etcd, each in its own
// network namespace, with extra flags, and runs measure with the first's
// kubeconfig and the three servers once the other two are voting members.
// Each server's own kubeconfig is ownKubeconfig.
func etcdCluster(bin string, extra []string, measure func(kubeconfig string, nodes []*nscluster.Node) error) error {
	network := nscluster.Network{Bridge: "rgbe0", Subnet: "10.94.0", Names: []string{"e1", "e2", "e3"}}
	if err := network.Setup(); err != nil {
		return err
	}
	defer network.Teardown()
	root, err := os.MkdirTemp("", "regente-bench-etcd-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)
	var nodes []*nscluster.Node
	defer func() {
		for i := len(nodes) - 1; i >= 0; i-- {
			nodes[i].Stop(30 * time.Second)
		}
	}()
	var join []string
	kubeconfig := filepath.Join(root, "kubeconfig")
	for i, name := range network.Names {
		n := &nscluster.Node{Name: name, IP: network.IP(i), Dir: filepath.Join(root, name)}
		n.DataDir = filepath.Join(n.Dir, "data")
		n.Args = append([]string{bin, "server", "--config", "", "--data-dir", n.DataDir, "--node-ip", n.IP, "--node-name", name,
			"--write-kubeconfig", filepath.Join(n.Dir, "admin.yaml"), "--disable-agent", "--disable", "metrics-server,servicelb,local-storage"}, append(join, extra...)...)
		if i == 0 {
			n.Args = append(n.Args, "--cluster-init")
		}
		if err := n.Start(); err != nil {
			return err
		}
		nodes = append(nodes, n)
		own := ownKubeconfig(n)
		if err := waitFor(3*time.Minute, name+" serving", func() bool {
			b, err := os.ReadFile(filepath.Join(n.Dir, "admin.yaml"))
			if err != nil {
				return false
			}
			os.WriteFile(own, []byte(strings.ReplaceAll(string(b), "https://127.0.0.1:6443", "https://"+n.IP+":6443")), 0o600)
			return (&instance{kubeconfig: own}).readyz()
		}); err != nil {
			return fmt.Errorf("%w:\n%s", err, n.Log.String())
		}
		if i == 0 {
			token, err := os.ReadFile(datadir.New(n.DataDir, "").Server.TokenFile)
			if err != nil {
				return err
			}
			join = []string{"--server", "https://" + n.IP + ":6443", "--token", strings.TrimSpace(string(token))}
			if err := copyFile(own, kubeconfig); err != nil {
				return err
			}
		}
	}
	// The workload waits until the joined members are voters, not learners.
	if err := waitFor(2*time.Minute, "three voting etcd members", func() bool {
		return strings.Contains(nodes[1].Log.String(), "now a voting member") && strings.Contains(nodes[2].Log.String(), "now a voting member")
	}); err != nil {
		return err
	}
	return measure(kubeconfig, nodes)
}

// ownKubeconfig is the admin kubeconfig that reaches server n's own API
// server, at its address in its network namespace.
func ownKubeconfig(n *nscluster.Node) string { return filepath.Join(n.Dir, "admin-remote.yaml") }

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o600)
}

// apiWorkload is the workload every datastore gets: creates at
// concurrency 1 and 16, then enough to hold snapshotObjects ConfigMaps,
// full lists of them, and the delay of watch events.
func apiWorkload(kubeconfig string, writes time.Duration) (datastoreResult, error) {
	var r datastoreResult
	for _, c := range []int{1, 16} {
		n, p50, p99, err := createLoad(kubeconfig, c, writes)
		if err != nil {
			return r, err
		}
		v := fmt.Sprintf("%.0f/s (p50 %s, p99 %s)", float64(n)/writes.Seconds(), p50.Round(10*time.Microsecond), p99.Round(10*time.Microsecond))
		if c == 1 {
			r.c1 = v
		} else {
			r.c16 = v
		}
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return r, err
	}
	cfg.QPS, cfg.Burst = 100000, 100000
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return r, err
	}
	ctx := context.Background()
	const ns = "bench-objects"
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		return r, err
	}
	if err := fill(ctx, client, ns, snapshotObjects); err != nil {
		return r, err
	}
	var lists []time.Duration
	for range 5 {
		begin := time.Now()
		list, err := client.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{ResourceVersion: ""})
		if err != nil {
			return r, err
		}
		if len(list.Items) < snapshotObjects {
			return r, fmt.Errorf("listed %d ConfigMaps, want %d", len(list.Items), snapshotObjects)
		}
		lists = append(lists, time.Since(begin))
	}
	r.list = median(lists).Round(time.Millisecond).String()
	delay, err := watchDelay(ctx, client)
	if err != nil {
		return r, err
	}
	r.watch = delay.Round(10 * time.Microsecond).String()
	all, err := client.CoreV1().ConfigMaps("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return r, err
	}
	r.objects = len(all.Items)
	return r, nil
}

// fill creates n ConfigMaps in ns from 16 clients.
func fill(ctx context.Context, client kubernetes.Interface, ns string, n int) error {
	next := make(chan int)
	errs := make(chan error, 16)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for i := range next {
				cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("obj-%05d", i)}, Data: map[string]string{"k": strings.Repeat("v", 100)}}
				if _, err := client.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for i := range n {
		select {
		case next <- i:
		case err := <-errs:
			close(next)
			wg.Wait()
			return fmt.Errorf("fill %s: %w", ns, err)
		}
	}
	close(next)
	wg.Wait()
	select {
	case err := <-errs:
		return fmt.Errorf("fill %s: %w", ns, err)
	default:
		return nil
	}
}

// watchDelay writes 200 ConfigMaps, 20 per second, and returns the 99th
// percentile of the time from a create's request to its watch event.
func watchDelay(ctx context.Context, client kubernetes.Interface) (time.Duration, error) {
	const ns, n = "bench-watch", 200
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		return 0, err
	}
	w, err := client.CoreV1().ConfigMaps(ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		return 0, err
	}
	defer w.Stop()
	var mu sync.Mutex
	sent := map[string]time.Time{}
	var delays []time.Duration
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			cm, ok := ev.Object.(*corev1.ConfigMap)
			if ev.Type != watch.Added || !ok {
				continue
			}
			mu.Lock()
			if t0, ok := sent[cm.Name]; ok {
				delays = append(delays, time.Since(t0))
			}
			finished := len(delays) == n
			mu.Unlock()
			if finished {
				return
			}
		}
	}()
	for i := range n {
		name := fmt.Sprintf("w-%d", i)
		mu.Lock()
		sent[name] = time.Now()
		mu.Unlock()
		if _, err := client.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
			return 0, err
		}
		time.Sleep(50 * time.Millisecond)
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		return 0, fmt.Errorf("only %d of %d watch events arrived", len(delays), n)
	}
	sort.Slice(delays, func(i, j int) bool { return delays[i] < delays[j] })
	return delays[len(delays)*99/100], nil
}

// or is a value, or "-" for what a datastore does not have (an external
// database is backed up with its own tools).
func or(v string) string {
	if v == "" {
		return "- (the database's own tools)"
	}
	return v
}
