package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/component-base/metrics/testutil"
	"k8s.io/utils/ptr"

	"regente.io/regente/tests/dbserver"
	"regente.io/regente/tests/nscluster"
)

// scaleOptions are -only scale's flags.
type scaleOptions struct {
	kwok        string        // the kwok binary (make bench-scale builds bin/kwok)
	stages      []string      // kwok's stage files: nodes Ready with Lease heartbeats, pods Running
	steps       []int         // node counts, ascending; one control plane grows through them
	podsPerNode int           // pods per simulated node, through Deployments
	churn       time.Duration // churn at each step, during which the figures are taken
	datastores  string        // which of sqlite,etcd,etcd3,postgres,mariadb ("" runs all)
	serverFlags []string      // more flags for every server, to try a setting
}

const (
	scaleNamespace = "scale"
	// replicasPerDeployment makes a step's pods out of nodes*podsPerNode/100
	// Deployments.
	replicasPerDeployment = 100
	// kwokAnnotation marks the nodes kwok plays the kubelet for; the taint
	// of the same key keeps everything but the bench's pods off them.
	kwokAnnotation = "kwok.x-k8s.io/node"
)

// scaleTarget is a control plane under the scale bench.
type scaleTarget struct {
	kubeconfig string
	pid        int           // the server process whose RSS and CPU are reported
	log        func() string // its log, searched for "database is locked"
}

// scaleResult is one row of the table: a datastore at one step.
type scaleResult struct {
	datastore                 string
	nodes, pods               int
	mutating, get, list       [2]time.Duration // p50, p99
	rssMiB                    int64
	serverCPU, kwokCPU        float64          // cores, during the churn
	size                      int64            // apiserver_storage_size_bytes
	errors5xx, locked, failed int              // 5xx answers, "database is locked" lines, bench calls that failed
	startup, churnStartup     [2]time.Duration // pod startup p50, p99 while the step's pods are made, and in the churn
	allRunning                time.Duration    // from the step's first create to every pod Running
	churned                   int              // pods replaced during the churn
}

// The upstream SLOs for API call latency (sig-scalability): p99 of
// mutating and get calls ≤ 1 s, of list calls ≤ 30 s (cluster scope, the
// loosest; namespaced lists are held to 5 s upstream, and are reported
// together here).
const (
	sloMutating = time.Second
	sloGet      = time.Second
	sloList     = 30 * time.Second
)

func (r scaleResult) slosMet() bool {
	return r.mutating[1] <= sloMutating && r.get[1] <= sloGet && r.list[1] <= sloList && r.errors5xx == 0 && r.locked == 0 && r.failed == 0
}

// benchScale grows a control plane on each datastore through the node
// steps with simulated nodes and prints one table.
func benchScale(bin string, o scaleOptions) error {
	runs := func(name string) bool {
		return o.datastores == "" || slices.Contains(strings.Split(o.datastores, ","), name)
	}
	var results []scaleResult
	var stopped []error
	// A datastore that cannot reach a step stops there; the next one
	// still runs.
	run := func(name string, start func(measure func(scaleTarget) error) error) {
		err := start(func(t scaleTarget) error {
			rows, err := scaleSteps(name, t, o)
			results = append(results, rows...)
			return err
		})
		if err != nil {
			err = fmt.Errorf("%s stopped: %w", name, err)
			fmt.Fprintln(os.Stderr, "scale:", err)
			stopped = append(stopped, err)
			return
		}
		fmt.Fprintf(os.Stderr, "scale: %s done\n", name)
	}
	single := func(extra ...string) func(func(scaleTarget) error) error {
		return func(measure func(scaleTarget) error) error {
			return scaleSingleServer(bin, append(extra, o.serverFlags...), measure)
		}
	}
	for _, d := range []struct {
		key, name string
		start     func(func(scaleTarget) error) error
	}{
		{"sqlite", "SQLite (kine)", single()},
		{"etcd", "embedded etcd, 1 member", single("--cluster-init")},
		{"etcd3", "embedded etcd, 3 members", func(measure func(scaleTarget) error) error {
			return etcdCluster(bin, o.serverFlags, func(kubeconfig string, nodes []*nscluster.Node) error {
				return measure(scaleTarget{kubeconfig: kubeconfig, pid: nodes[0].Pid(), log: nodes[0].Log.String})
			})
		}},
		{"postgres", "PostgreSQL 15 (kine)", func(measure func(scaleTarget) error) error {
			pg, err := dbserver.Postgres("127.0.0.1", 15433)
			if err != nil {
				return err
			}
			defer pg.Stop()
			return scaleSingleServer(bin, append([]string{"--datastore-endpoint", "postgres://postgres@127.0.0.1:15433/regente?sslmode=disable"}, o.serverFlags...), measure)
		}},
		{"mariadb", "MariaDB 10.11 (kine)", func(measure func(scaleTarget) error) error {
			my, err := dbserver.MariaDB("127.0.0.1", 13307, "bench-pw")
			if err != nil {
				return err
			}
			defer my.Stop()
			return scaleSingleServer(bin, append([]string{"--datastore-endpoint", "mysql://regente:bench-pw@tcp(127.0.0.1:13307)/regente"}, o.serverFlags...), measure)
		}},
	} {
		if !runs(d.key) {
			continue
		}
		run(d.name, d.start)
	}
	printScale(os.Stdout, results)
	return errors.Join(stopped...)
}

// scaleSingleServer runs measure on one control plane with extra flags,
// on a fresh data dir, with no add-on that would only sit Pending.
func scaleSingleServer(bin string, extra []string, measure func(scaleTarget) error) error {
	s, err := newInstance(bin)
	if err != nil {
		return err
	}
	defer os.RemoveAll(s.dir)
	s.extra = append([]string{"--disable", "coredns,metrics-server,servicelb,local-storage,ingress"}, extra...)
	if _, err := s.start(); err != nil {
		return err
	}
	defer s.stop()
	return measure(scaleTarget{kubeconfig: s.kubeconfig, pid: s.cmd.Process.Pid, log: func() string {
		b, _ := os.ReadFile(filepath.Join(s.dir, "server.log"))
		return string(b)
	}})
}

// scaleSteps runs kwok against t and takes it through every step.
func scaleSteps(datastore string, t scaleTarget, o scaleOptions) ([]scaleResult, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", t.kubeconfig)
	if err != nil {
		return nil, err
	}
	cfg.QPS, cfg.Burst = 500, 1000
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	kwok, kwokLog, err := startKwok(ctx, o, t.kubeconfig)
	if err != nil {
		return nil, err
	}
	defer func() { cancel(); kwok.Wait() }()
	if _, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: scaleNamespace}}, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("create namespace %s: %w", scaleNamespace, err)
	}
	pods := newPodTimes()
	factory := informers.NewSharedInformerFactoryWithOptions(c, 0, informers.WithNamespace(scaleNamespace))
	podInformer := factory.Core().V1().Pods().Informer()
	podInformer.AddEventHandler(pods)
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())

	var results []scaleResult
	nodes, deployments := 0, 0
	for _, step := range o.steps {
		r := scaleResult{datastore: datastore, nodes: step, pods: step * o.podsPerNode}
		fmt.Fprintf(os.Stderr, "scale: %s, %d nodes, %d pods\n", datastore, step, r.pods)
		begin := time.Now()
		if err := createKwokNodes(ctx, c, nodes, step); err != nil {
			return results, err
		}
		nodes = step
		if err := waitFor(5*time.Minute, fmt.Sprintf("%d kwok nodes Ready", step), func() bool { return readyNodes(ctx, c) >= step }); err != nil {
			return results, fmt.Errorf("%w; kwok's log:\n%s", err, tail(kwokLog.String(), 20))
		}
		want := r.pods / replicasPerDeployment
		for ; deployments < want; deployments++ {
			if _, err := c.AppsV1().Deployments(scaleNamespace).Create(ctx, scaleDeployment(deployments), metav1.CreateOptions{}); err != nil {
				return results, fmt.Errorf("create deployment: %w", err)
			}
		}
		// Pods are made by the ReplicaSet controller at its client's rate:
		// the wait allows 10 pods a second and two minutes more.
		if err := waitFor(2*time.Minute+time.Duration(r.pods/10)*time.Second, fmt.Sprintf("%d pods Running", r.pods), func() bool { return pods.running() >= r.pods }); err != nil {
			return results, fmt.Errorf("%w (%d Running); kwok's log:\n%s", err, pods.running(), tail(kwokLog.String(), 20))
		}
		r.allRunning = time.Since(begin).Round(time.Second)
		r.startup = pods.startupPercentiles()
		fmt.Fprintf(os.Stderr, "scale: %d pods Running after %s; churn for %s\n", r.pods, r.allRunning, o.churn)

		before, err := scrape(ctx, c)
		if err != nil {
			return results, err
		}
		cpuBefore, kwokBefore, lockedBefore, wall := cpuSeconds(t.pid), cpuSeconds(kwok.Process.Pid), strings.Count(t.log(), "database is locked"), time.Now()
		r.churned, r.failed = churn(ctx, c, podInformer.GetStore(), deployments, o.churn)
		after, err := scrape(ctx, c)
		if err != nil {
			return results, err
		}
		elapsed := time.Since(wall).Seconds()
		r.serverCPU = (cpuSeconds(t.pid) - cpuBefore) / elapsed
		r.kwokCPU = (cpuSeconds(kwok.Process.Pid) - kwokBefore) / elapsed
		r.locked = strings.Count(t.log(), "database is locked") - lockedBefore
		if mem, err := memoryOf(t.pid); err == nil {
			r.rssMiB = mem["Rss"] >> 20
		}
		r.mutating = latency(before, after, "POST", "PUT", "PATCH", "DELETE")
		r.get = latency(before, after, "GET")
		r.list = latency(before, after, "LIST")
		r.errors5xx = int(counterDelta(before, after, "apiserver_request_total", func(m *dto.Metric) bool { return strings.HasPrefix(label(m, "code"), "5") }))
		r.size = int64(counterDelta(nil, after, "apiserver_storage_size_bytes", func(*dto.Metric) bool { return true }))
		r.churnStartup = pods.startupPercentiles()
		results = append(results, r)
		printScale(os.Stderr, []scaleResult{r})
	}
	return results, nil
}

// startKwok runs kwok for the nodes that carry kwokAnnotation.
func startKwok(ctx context.Context, o scaleOptions, kubeconfig string) (*exec.Cmd, *nscluster.Buffer, error) {
	log := &nscluster.Buffer{}
	cmd := exec.CommandContext(ctx, o.kwok, "--kubeconfig", kubeconfig, "-c", strings.Join(o.stages, ","),
		"--manage-all-nodes=false", "--manage-nodes-with-annotation-selector", kwokAnnotation+"=fake",
		"--cidr", "10.128.0.0/12", "--node-ip", "10.127.0.1", "--node-lease-duration-seconds", "40", "-v", "WARN")
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("start kwok (%s; make bench-scale builds it): %w", o.kwok, err)
	}
	return cmd, log, nil
}

// createKwokNodes creates nodes kwok-<from> to kwok-<to-1>, from 16 clients.
func createKwokNodes(ctx context.Context, c kubernetes.Interface, from, to int) error {
	next := make(chan int)
	go func() {
		defer close(next)
		for i := from; i < to; i++ {
			next <- i
		}
	}()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for range 16 {
		wg.Go(func() {
			for i := range next {
				if _, err := c.CoreV1().Nodes().Create(ctx, kwokNode(i), metav1.CreateOptions{}); err != nil {
					mu.Lock()
					if first == nil {
						first = fmt.Errorf("create node kwok-%d: %w", i, err)
					}
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	return first
}

func kwokNode(i int) *corev1.Node {
	name := fmt.Sprintf("kwok-%d", i)
	capacity := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("32"), corev1.ResourceMemory: resource.MustParse("256Gi"), corev1.ResourcePods: resource.MustParse("110")}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{kwokAnnotation: "fake"},
			Labels: map[string]string{"type": "kwok", corev1.LabelHostname: name}},
		Spec:   corev1.NodeSpec{Taints: []corev1.Taint{{Key: kwokAnnotation, Value: "fake", Effect: corev1.TaintEffectNoSchedule}}},
		Status: corev1.NodeStatus{Capacity: capacity, Allocatable: capacity},
	}
}

func scaleDeployment(i int) *appsv1.Deployment {
	labels := map[string]string{"app": fmt.Sprintf("scale-%d", i)}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("scale-%d", i)},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](replicasPerDeployment),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					NodeSelector: map[string]string{"type": "kwok"},
					Tolerations:  []corev1.Toleration{{Key: kwokAnnotation, Operator: corev1.TolerationOpExists}},
					Containers:   []corev1.Container{{Name: "app", Image: "simulated"}},
				},
			},
		},
	}
}

func readyNodes(ctx context.Context, c kubernetes.Interface) int {
	list, err := c.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: "type=kwok", ResourceVersion: "0"})
	if err != nil {
		return 0
	}
	n := 0
	for _, node := range list.Items {
		for _, cond := range node.Status.Conditions {
			if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
				n++
			}
		}
	}
	return n
}

// churn replaces a tenth of the pods a minute (a hundredth every 6 s,
// deleted at once as a node's eviction would) and every 30 s scales a
// tenth of the Deployments up by 10 replicas, then back, until d has
// passed. It returns how many pods it deleted and how many of its calls
// failed.
func churn(ctx context.Context, c kubernetes.Interface, pods cache.Store, deployments int, d time.Duration) (deleted, failed int) {
	tick := time.NewTicker(6 * time.Second)
	defer tick.Stop()
	end := time.Now().Add(d)
	up := true
	for i := 1; time.Now().Before(end); i++ {
		<-tick.C
		all := pods.List()
		rand.Shuffle(len(all), func(a, b int) { all[a], all[b] = all[b], all[a] })
		// From 16 clients, so that a thousand nodes' hundredth (300 pods)
		// fits in the 6 s.
		victims := make(chan *corev1.Pod)
		var mu sync.Mutex
		var wg sync.WaitGroup
		for range 16 {
			wg.Go(func() {
				for pod := range victims {
					err := c.CoreV1().Pods(scaleNamespace).Delete(ctx, pod.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
					mu.Lock()
					switch {
					case apierrors.IsNotFound(err): // gone with a scale-down meanwhile
					case err != nil:
						failed++
					default:
						deleted++
					}
					mu.Unlock()
				}
			})
		}
		for _, obj := range all[:len(all)/100] {
			victims <- obj.(*corev1.Pod)
		}
		close(victims)
		wg.Wait()
		if i%5 != 0 {
			continue
		}
		delta := 10
		if !up {
			delta = 0
		}
		up = !up
		for n := 0; n < deployments; n += 10 {
			patch := fmt.Sprintf(`{"spec":{"replicas":%d}}`, replicasPerDeployment+delta)
			if _, err := c.AppsV1().Deployments(scaleNamespace).Patch(ctx, fmt.Sprintf("scale-%d", n), types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
				failed++
			}
		}
	}
	return deleted, failed
}

// podTimes keeps, for each pod, when the bench first saw it and when it
// first saw it Running: the pod startup latency as a client sees it.
type podTimes struct {
	mu       sync.Mutex
	seen     map[types.UID]time.Time
	started  map[types.UID]time.Duration // not yet reported
	reported map[types.UID]bool
	live     map[types.UID]bool // Running and not deleted
}

func newPodTimes() *podTimes {
	return &podTimes{seen: map[types.UID]time.Time{}, started: map[types.UID]time.Duration{}, reported: map[types.UID]bool{}, live: map[types.UID]bool{}}
}

func (p *podTimes) observe(obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.seen[pod.UID]; !ok {
		p.seen[pod.UID] = now
	}
	if pod.Status.Phase == corev1.PodRunning && pod.DeletionTimestamp == nil {
		if _, ok := p.started[pod.UID]; !ok && !p.reported[pod.UID] {
			p.started[pod.UID] = now.Sub(p.seen[pod.UID])
		}
		p.live[pod.UID] = true
	}
}

func (p *podTimes) OnAdd(obj any, _ bool) { p.observe(obj) }
func (p *podTimes) OnUpdate(_, obj any)   { p.observe(obj) }
func (p *podTimes) OnDelete(obj any) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	if pod, ok := obj.(*corev1.Pod); ok {
		p.mu.Lock()
		delete(p.live, pod.UID)
		delete(p.seen, pod.UID)
		delete(p.reported, pod.UID)
		p.mu.Unlock()
	}
}

func (p *podTimes) running() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.live)
}

// startupPercentiles are p50 and p99 of every pod's startup so far, and
// forgets them, so that each step reports its own pods.
func (p *podTimes) startupPercentiles() [2]time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	var all []time.Duration
	for uid, d := range p.started {
		all = append(all, d)
		delete(p.started, uid)
		p.reported[uid] = true
	}
	slices.Sort(all)
	return [2]time.Duration{percentile(all, 50), percentile(all, 99)}
}

// scrape reads the API server's metrics.
func scrape(ctx context.Context, c kubernetes.Interface) (map[string]*dto.MetricFamily, error) {
	body, err := c.Discovery().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("read /metrics: %w", err)
	}
	families, err := testutil.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("parse /metrics: %w", err)
	}
	return families, nil
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func seriesKey(m *dto.Metric) string {
	var b strings.Builder
	for _, l := range m.GetLabel() {
		b.WriteString(l.GetName() + "=" + l.GetValue() + ",")
	}
	return b.String()
}

// latency is p50 and p99 of apiserver_request_duration_seconds between two
// scrapes, over resource requests of the given verbs, all resources
// together.
func latency(before, after map[string]*dto.MetricFamily, verbs ...string) [2]time.Duration {
	const name = "apiserver_request_duration_seconds"
	old := map[string]*dto.Histogram{}
	if f := before[name]; f != nil {
		for _, m := range f.GetMetric() {
			old[seriesKey(m)] = m.GetHistogram()
		}
	}
	var vec testutil.HistogramVec
	if f := after[name]; f != nil {
		for _, m := range f.GetMetric() {
			if label(m, "resource") == "" || !slices.Contains(verbs, label(m, "verb")) {
				continue
			}
			h := m.GetHistogram()
			delta := &dto.Histogram{SampleCount: ptr.To(h.GetSampleCount()), SampleSum: ptr.To(h.GetSampleSum())}
			prev := old[seriesKey(m)]
			if prev != nil {
				*delta.SampleCount -= prev.GetSampleCount()
			}
			for i, b := range h.GetBucket() {
				n := b.GetCumulativeCount()
				if prev != nil && i < len(prev.GetBucket()) {
					n -= prev.GetBucket()[i].GetCumulativeCount()
				}
				delta.Bucket = append(delta.Bucket, &dto.Bucket{CumulativeCount: ptr.To(n), UpperBound: b.UpperBound})
			}
			vec = append(vec, &testutil.Histogram{Histogram: delta})
		}
	}
	if vec.GetAggregatedSampleCount() == 0 {
		return [2]time.Duration{}
	}
	seconds := func(q float64) time.Duration { return time.Duration(vec.Quantile(q) * float64(time.Second)) }
	return [2]time.Duration{seconds(0.5), seconds(0.99)}
}

// counterDelta sums a counter's (or gauge's) series that match, after
// less before (before may be nil).
func counterDelta(before, after map[string]*dto.MetricFamily, name string, match func(*dto.Metric) bool) float64 {
	sum := func(families map[string]*dto.MetricFamily) float64 {
		total := 0.0
		for _, m := range families[name].GetMetric() {
			if match(m) {
				total += m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
		return total
	}
	if before == nil {
		return sum(after)
	}
	return sum(after) - sum(before)
}

// cpuSeconds is the user and system CPU time of pid and its reaped
// children so far.
func cpuSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command, which is in parentheses and may hold spaces.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	ticks := 0.0
	for _, i := range []int{11, 12} { // utime, stime (fields 14 and 15)
		v, _ := strconv.ParseFloat(f[i], 64)
		ticks += v
	}
	return ticks / 100 // USER_HZ
}

func printScale(w io.Writer, results []scaleResult) {
	ms := func(d [2]time.Duration) string {
		return fmt.Sprintf("%s / %s", d[0].Round(time.Millisecond), d[1].Round(time.Millisecond))
	}
	fmt.Fprintf(w, "\n| datastore | nodes | pods | mutating p50 / p99 | get p50 / p99 | list p50 / p99 | SLOs | server RSS | server CPU (kwok) | datastore size | 5xx, locked, failed | pod startup p50 / p99, step | all Running after | pod startup p50 / p99, churn | pods replaced |\n"+
		"| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, r := range results {
		met := "met"
		if !r.slosMet() {
			met = "**not met**"
		}
		fmt.Fprintf(w, "| %s | %d | %d | %s | %s | %s | %s | %d MiB | %.2f (%.2f) cores | %.0f MiB | %d, %d, %d | %s | %s | %s | %d |\n",
			r.datastore, r.nodes, r.pods, ms(r.mutating), ms(r.get), ms(r.list), met, r.rssMiB, r.serverCPU, r.kwokCPU,
			float64(r.size)/(1<<20), r.errors5xx, r.locked, r.failed, ms(r.startup), r.allRunning, ms(r.churnStartup), r.churned)
	}
}

func tail(s string, lines int) string {
	all := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(all[max(0, len(all)-lines):], "\n")
}

// kwokStages are the stage files of the kwok module that hack/kwok pins
// (nodes made Ready and kept so by Lease heartbeats; pods made Running,
// completed and deleted), read from the module cache as kwok ships them.
func kwokStages() ([]string, error) {
	out, err := exec.Command("go", "list", "-C", "hack/kwok", "-m", "-f", "{{.Dir}}", "sigs.k8s.io/kwok").Output()
	if err != nil {
		return nil, fmt.Errorf("find the kwok module (make bench-scale downloads it): %w", err)
	}
	dir := filepath.Join(strings.TrimSpace(string(out)), "kustomize", "stage")
	var stages []string
	for _, f := range []string{"node/fast/node-initialize.yaml", "node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
		"pod/fast/pod-ready.yaml", "pod/fast/pod-complete.yaml", "pod/fast/pod-delete.yaml"} {
		path := filepath.Join(dir, f)
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("kwok's stage %s: %w", f, err)
		}
		stages = append(stages, path)
	}
	return stages, nil
}
