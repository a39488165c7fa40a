// Package memlimit runs a node inside a memory-limited cgroup and reads
// what the limit did to it: usage, peak, OOM kills and major page faults
// (thrashing shows there before anything is killed), and what clients saw
// of the API meanwhile. The integration test and the bench share it.
package memlimit

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"regente.io/regente/tests/nscluster"
)

// Cgroup is a cgroup with a memory limit that a node runs in, with the
// kubelet's cgroup root in it so that pods count against the same limit.
type Cgroup struct {
	Name   string // e.g. regente-mem; the kubelet's cgroup root is /Name
	Limit  int64  // bytes
	memDir string // the memory controller's dir (v1) or the unified dir (v2)
	v2     bool
	remove func()
}

// New creates the cgroup in every hierarchy (the kubelet checks them all)
// and sets its memory limit.
func New(name string, limit int64) (*Cgroup, error) {
	root, remove, err := nscluster.CgroupRoot(name)
	if err != nil {
		return nil, err
	}
	c := &Cgroup{Name: name, Limit: limit, remove: remove}
	if _, statErr := os.Stat("/sys/fs/cgroup/cgroup.controllers"); statErr == nil {
		c.v2, c.memDir = true, filepath.Join("/sys/fs/cgroup", root)
		// The root must hand the memory controller down, as systemd does.
		_ = os.WriteFile("/sys/fs/cgroup/cgroup.subtree_control", []byte("+memory"), 0o644)
		err = os.WriteFile(filepath.Join(c.memDir, "memory.max"), []byte(strconv.FormatInt(limit, 10)), 0o644)
		if err == nil {
			// Swap would hide the pressure the limit is there to show.
			_ = os.WriteFile(filepath.Join(c.memDir, "memory.swap.max"), []byte("0"), 0o644)
		}
	} else {
		c.memDir = filepath.Join("/sys/fs/cgroup/memory", root)
		err = os.WriteFile(filepath.Join(c.memDir, "memory.limit_in_bytes"), []byte(strconv.FormatInt(limit, 10)), 0o644)
	}
	if err != nil {
		remove()
		return nil, fmt.Errorf("set the memory limit of cgroup %s: %w", c.memDir, err)
	}
	return c, nil
}

// KubeletArg puts the kubelet's pods below the cgroup.
func (c *Cgroup) KubeletArg() string { return "--kubelet-arg=cgroup-root=/" + c.Name }

// Wrap is the argv prefix that moves a command into the cgroup before it
// runs: every process it starts (containerd, shims) is born there.
func (c *Cgroup) Wrap() []string {
	return []string{"/bin/sh", "-c", `echo $$ > "$1" && shift && exec "$@"`, "sh", filepath.Join(c.memDir, "cgroup.procs")}
}

// Remove deletes the cgroup once its processes are gone.
func (c *Cgroup) Remove() { c.remove() }

// Stats is what the memory controller counted for the whole tree.
type Stats struct {
	Usage       int64 // bytes charged now (anonymous memory and page cache)
	Peak        int64 // the most ever charged
	Anon        int64 // anonymous memory now
	OOMKills    int64 // processes the kernel killed for the limit
	MajorFaults int64 // page faults that read from disk, since the cgroup was made
}

// Stats reads the cgroup's counters.
func (c *Cgroup) Stats() (Stats, error) {
	var st Stats
	read := func(file string) (string, error) {
		b, err := os.ReadFile(filepath.Join(c.memDir, file))
		return strings.TrimSpace(string(b)), err
	}
	keyed := func(file string) (map[string]int64, error) {
		text, err := read(file)
		m := map[string]int64{}
		for _, line := range strings.Split(text, "\n") {
			if k, v, ok := strings.Cut(line, " "); ok {
				m[k], _ = strconv.ParseInt(v, 10, 64)
			}
		}
		return m, err
	}
	num := func(file string) (int64, error) {
		text, err := read(file)
		if err != nil {
			return 0, err
		}
		return strconv.ParseInt(text, 10, 64)
	}
	var errs []error
	note := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	var err error
	if c.v2 {
		st.Usage, err = num("memory.current")
		note(err)
		st.Peak, _ = num("memory.peak") // kernels before 5.19 lack it
		stat, err := keyed("memory.stat")
		note(err)
		st.Anon, st.MajorFaults = stat["anon"], stat["pgmajfault"]
		events, err := keyed("memory.events")
		note(err)
		st.OOMKills = events["oom_kill"]
	} else {
		st.Usage, err = num("memory.usage_in_bytes")
		note(err)
		st.Peak, err = num("memory.max_usage_in_bytes")
		note(err)
		stat, err := keyed("memory.stat")
		note(err)
		st.Anon, st.MajorFaults = stat["total_rss"], stat["total_pgmajfault"]
		oom, err := keyed("memory.oom_control")
		note(err)
		st.OOMKills = oom["oom_kill"]
	}
	if len(errs) > 0 {
		return st, fmt.Errorf("read the memory counters of %s: %v", c.memDir, errs)
	}
	return st, nil
}

// Probe is what a client saw of the cluster during Watch.
type Probe struct {
	Gets, Creates []time.Duration // one of each per interval
	Errors        []string        // failed calls, with when
	NotReady      int             // samples where the node was not Ready
	Samples       int
}

// Watch gets and creates a ConfigMap in namespace and reads the node's
// Ready condition every interval until d has passed or ctx ends.
func Watch(ctx context.Context, client kubernetes.Interface, namespace, node string, d, interval time.Duration) Probe {
	var p Probe
	cms := client.CoreV1().ConfigMaps(namespace)
	begin := time.Now()
	for i := 0; time.Since(begin) < d && ctx.Err() == nil; i++ {
		call := func(what string, f func(context.Context) error) time.Duration {
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			start := time.Now()
			if err := f(cctx); err != nil {
				p.Errors = append(p.Errors, fmt.Sprintf("%s after %s: %v", what, time.Since(begin).Round(time.Second), err))
			}
			return time.Since(start)
		}
		name := fmt.Sprintf("probe-%d", i)
		p.Creates = append(p.Creates, call("create", func(ctx context.Context) error {
			_, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string]string{"i": name}}, metav1.CreateOptions{})
			return err
		}))
		p.Gets = append(p.Gets, call("get", func(ctx context.Context) error {
			_, err := cms.Get(ctx, name, metav1.GetOptions{})
			return err
		}))
		ready := false
		call("get node", func(ctx context.Context) error {
			n, err := client.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
			if err != nil {
				return err
			}
			for _, c := range n.Status.Conditions {
				ready = ready || c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue
			}
			return nil
		})
		p.Samples++
		if !ready {
			p.NotReady++
		}
		select {
		case <-ctx.Done():
		case <-time.After(interval):
		}
	}
	return p
}

// P99 is the 99th percentile of d (the largest below 100 samples).
func P99(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*99/100)]
}
