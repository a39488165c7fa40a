package faults

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
)

// Options shape the load.
type Options struct {
	Namespace string
	Workers   int           // concurrent writers; default 4
	Keys      int           // ConfigMaps per worker; default 25
	Rate      int           // writes a second over all workers; default 100
	Timeout   time.Duration // per request; default 5 s
}

// Load is a running write load and its watcher.
type Load struct {
	opts                     Options
	client                   kubernetes.Interface
	stopWriters, stopWatcher context.CancelFunc
	writers, watcher         sync.WaitGroup

	mu        sync.Mutex
	acked     map[string]int64 // name → last acknowledged value
	ackedRVs  []int64          // the revision of every acknowledged write
	writes    int              // acknowledged
	failed    int              // refused, timed out or unanswered
	lastAck   time.Time
	watchSeen map[int64]bool
	covered   []span // revisions a list covered in place of events
	watchRV   int64  // the last revision the watcher saw
	startRV   int64
	relists   int
	anomalies []string
}

type span struct{ from, to int64 } // (from, to]

// Report is what a load counted by its end.
type Report struct {
	Acknowledged int      // writes acknowledged
	Failed       int      // writes refused or unanswered (expected while a server is down)
	Lost         []string // acknowledged writes missing or older than acknowledged
	Anomalies    []string // revisions skipped or repeated by the watch
	Relists      int      // watches that had to list again (410 Gone)
}

// Start creates the namespace and starts the writers and the watcher.
func Start(ctx context.Context, cfg *rest.Config, opts Options) (*Load, error) {
	opts = withDefaults(opts)
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = float32(4*opts.Rate), 4*opts.Rate
	cfg.Timeout = opts.Timeout
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("client for the fault load: %w", err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: opts.Namespace}}
	if _, err := client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("create namespace %s for the fault load: %w", opts.Namespace, err)
	}
	list, err := client.CoreV1().ConfigMaps(opts.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list the fault load's namespace %s: %w", opts.Namespace, err)
	}
	rv, err := revision(list.ResourceVersion)
	if err != nil {
		return nil, err
	}
	l := &Load{opts: opts, client: client, acked: map[string]int64{},
		watchSeen: map[int64]bool{}, watchRV: rv, startRV: rv}
	watchCtx, stopWatcher := context.WithCancel(ctx)
	writeCtx, stopWriters := context.WithCancel(ctx)
	l.stopWatcher, l.stopWriters = stopWatcher, stopWriters
	l.watcher.Go(func() { l.watch(watchCtx) })
	interval := time.Duration(opts.Workers) * time.Second / time.Duration(opts.Rate)
	for w := range opts.Workers {
		l.writers.Go(func() { l.write(writeCtx, w, interval) })
	}
	return l, nil
}

func withDefaults(o Options) Options {
	if o.Workers <= 0 {
		o.Workers = 4
	}
	if o.Keys <= 0 {
		o.Keys = 25
	}
	if o.Rate <= 0 {
		o.Rate = 100
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	return o
}

// write creates worker w's ConfigMaps, then updates them in turn, one
// write per interval.
func (l *Load) write(ctx context.Context, w int, interval time.Duration) {
	cms := l.client.CoreV1().ConfigMaps(l.opts.Namespace)
	created := make([]bool, l.opts.Keys)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for value := int64(1); ; value++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		k := int(value-1) % l.opts.Keys
		name := fmt.Sprintf("w%d-k%d", w, k)
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string]string{"v": strconv.FormatInt(value, 10)}}
		var out *corev1.ConfigMap
		var err error
		if created[k] {
			out, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
		} else {
			out, err = cms.Create(ctx, cm, metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) {
				// A create that timed out but was applied: update from now on.
				created[k] = true
				out, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
			}
		}
		if err != nil {
			if ctx.Err() == nil {
				l.mu.Lock()
				l.failed++
				l.mu.Unlock()
			}
			continue
		}
		created[k] = true
		rv, err := revision(out.ResourceVersion)
		l.mu.Lock()
		if err != nil {
			l.anomalies = append(l.anomalies, fmt.Sprintf("write of %s acknowledged with %v", name, err))
		}
		l.acked[name] = value
		l.ackedRVs = append(l.ackedRVs, rv)
		l.writes++
		l.lastAck = time.Now()
		l.mu.Unlock()
	}
}

// watch follows the namespace until ctx ends, resuming after every end of
// a watch and listing again after 410 Gone.
func (l *Load) watch(ctx context.Context) {
	cms := l.client.CoreV1().ConfigMaps(l.opts.Namespace)
	for ctx.Err() == nil {
		l.mu.Lock()
		from := l.watchRV
		l.mu.Unlock()
		w, err := cms.Watch(ctx, metav1.ListOptions{ResourceVersion: strconv.FormatInt(from, 10), TimeoutSeconds: ptr.To[int64](300)})
		if err != nil {
			if apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
				l.relist(ctx)
				continue
			}
			sleep(ctx, 200*time.Millisecond) // the server is down
			continue
		}
		gone := l.follow(ctx, w)
		w.Stop()
		if gone {
			l.relist(ctx)
		}
	}
}

// follow reads one watch to its end and reports whether it ended with 410.
func (l *Load) follow(ctx context.Context, w watch.Interface) (gone bool) {
	for {
		select {
		case <-ctx.Done():
			return false
		case ev, ok := <-w.ResultChan():
			if !ok {
				return false
			}
			if ev.Type == watch.Error {
				status := apierrors.FromObject(ev.Object)
				return apierrors.IsResourceExpired(status) || apierrors.IsGone(status)
			}
			cm, ok := ev.Object.(*corev1.ConfigMap)
			if !ok || ev.Type == watch.Bookmark {
				continue
			}
			rv, err := revision(cm.ResourceVersion)
			l.mu.Lock()
			switch {
			case err != nil:
				l.anomalies = append(l.anomalies, fmt.Sprintf("%s event for %s: %v", ev.Type, cm.Name, err))
			case rv <= l.watchRV:
				l.anomalies = append(l.anomalies, fmt.Sprintf("%s event for %s at revision %d after revision %d: repeated or out of order", ev.Type, cm.Name, rv, l.watchRV))
			default:
				l.watchSeen[rv] = true
				l.watchRV = rv
			}
			l.mu.Unlock()
		}
	}
}

// relist lists the namespace (until the server answers) and resumes from
// the list's revision; the revisions between are covered by the list.
func (l *Load) relist(ctx context.Context) {
	for ctx.Err() == nil {
		list, err := l.client.CoreV1().ConfigMaps(l.opts.Namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			sleep(ctx, 200*time.Millisecond)
			continue
		}
		rv, err := revision(list.ResourceVersion)
		l.mu.Lock()
		defer l.mu.Unlock()
		switch {
		case err != nil:
			l.anomalies = append(l.anomalies, fmt.Sprintf("list: %v", err))
		case rv < l.watchRV:
			l.anomalies = append(l.anomalies, fmt.Sprintf("list at revision %d after the watch saw revision %d: history went back", rv, l.watchRV))
		default:
			l.covered = append(l.covered, span{l.watchRV, rv})
			l.watchRV = rv
		}
		l.relists++
		return
	}
}

// LastAck is when the last write was acknowledged.
func (l *Load) LastAck() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lastAck
}

// Acknowledged is the number of writes acknowledged so far.
func (l *Load) Acknowledged() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.writes
}

// WaitForAck waits until a write is acknowledged after t and returns how
// long after t that was: the time a fault at t kept writes out.
func (l *Load) WaitForAck(ctx context.Context, t time.Time, timeout time.Duration) (time.Duration, error) {
	deadline := time.Now().Add(timeout)
	for {
		if last := l.LastAck(); last.After(t) {
			return last.Sub(t), nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("no write acknowledged within %s of the fault", timeout)
		}
		if err := sleep(ctx, 20*time.Millisecond); err != nil {
			return 0, err
		}
	}
}

// Stop ends the writers, lets the watcher catch up with the last
// acknowledged write, then reads everything back and reports.
func (l *Load) Stop(ctx context.Context) (Report, error) {
	l.stopWriters()
	l.writers.Wait()
	l.mu.Lock()
	maxRV := l.startRV
	for _, rv := range l.ackedRVs {
		maxRV = max(maxRV, rv)
	}
	l.mu.Unlock()
	catchUp := time.Now().Add(time.Minute)
	for time.Now().Before(catchUp) {
		l.mu.Lock()
		seen := l.watchRV
		l.mu.Unlock()
		if seen >= maxRV {
			break
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			break
		}
	}
	l.stopWatcher()
	l.watcher.Wait()

	list, err := l.client.CoreV1().ConfigMaps(l.opts.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return Report{}, fmt.Errorf("read back the fault load's namespace %s: %w", l.opts.Namespace, err)
	}
	have := map[string]int64{}
	for _, cm := range list.Items {
		v, err := strconv.ParseInt(cm.Data["v"], 10, 64)
		if err != nil {
			v = -1
		}
		have[cm.Name] = v
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	r := Report{Acknowledged: l.writes, Failed: l.failed, Relists: l.relists, Anomalies: slices.Clone(l.anomalies)}
	names := make([]string, 0, len(l.acked))
	for name := range l.acked {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		want := l.acked[name]
		got, ok := have[name]
		switch {
		case !ok:
			r.Lost = append(r.Lost, fmt.Sprintf("%s (value %d acknowledged) is missing", name, want))
		case got < want:
			r.Lost = append(r.Lost, fmt.Sprintf("%s has value %d, %d was acknowledged", name, got, want))
		}
	}
	for _, rv := range l.ackedRVs {
		if !l.reachedWatcher(rv) {
			r.Anomalies = append(r.Anomalies, fmt.Sprintf("acknowledged revision %d never reached the watch (last seen %d)", rv, l.watchRV))
		}
	}
	return r, nil
}

// reachedWatcher reports whether revision rv came to the watcher as an
// event or inside a list. Called with l.mu held.
func (l *Load) reachedWatcher(rv int64) bool {
	if rv <= l.startRV || l.watchSeen[rv] {
		return true
	}
	for _, s := range l.covered {
		if rv > s.from && rv <= s.to {
			return true
		}
	}
	return false
}

// String is one line for a log or a table cell.
func (r Report) String() string {
	return fmt.Sprintf("%d writes acknowledged, %d failed, %d lost, %d watch anomalies, %d relists",
		r.Acknowledged, r.Failed, len(r.Lost), len(r.Anomalies), r.Relists)
}

// Err is nil when nothing acknowledged was lost and the watch was whole.
func (r Report) Err() error {
	var errs []error
	if len(r.Lost) > 0 {
		errs = append(errs, fmt.Errorf("%d acknowledged writes lost, e.g. %v", len(r.Lost), r.Lost[:min(5, len(r.Lost))]))
	}
	if len(r.Anomalies) > 0 {
		errs = append(errs, fmt.Errorf("%d watch anomalies, e.g. %v", len(r.Anomalies), r.Anomalies[:min(5, len(r.Anomalies))]))
	}
	return errors.Join(errs...)
}

func revision(rv string) (int64, error) {
	n, err := strconv.ParseInt(rv, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("resource version %q is not a revision: %w", rv, err)
	}
	return n, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
