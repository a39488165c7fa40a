package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"regente.io/regente/tests/memlimit"
)

// benchMemLimit runs a whole single node (regente, containerd, shims, the
// default add-ons and 10 busybox pods) inside a memory cgroup of each of
// limits in turn, as TestNodeInMemoryLimit does for a minute at 768 MiB,
// and watches it for watch: a limit passes with no OOM kill, the node
// Ready throughout, every API call answered and get/create p99 under 1 s.
func benchMemLimit(bin string, limits []int64, watch time.Duration) ([]row, error) {
	return eachLimit(limits, "a single node with 10 pods", "≤ 768 MiB", func(limit int64) ([]row, bool, error) {
		return memLimitRun(bin, limit, watch)
	})
}

// eachLimit runs one memory limit after another and ends with the
// smallest that passed.
func eachLimit(limits []int64, what, target string, run func(limit int64) ([]row, bool, error)) ([]row, error) {
	var rows []row
	smallest := int64(0)
	for _, limit := range limits {
		r, pass, err := run(limit)
		if err != nil {
			return rows, fmt.Errorf("%s in %d MiB: %w", what, limit>>20, err)
		}
		rows = append(rows, r...)
		if pass && (smallest == 0 || limit < smallest) {
			smallest = limit
		}
	}
	best := "none of those tried"
	if smallest > 0 {
		best = fmt.Sprintf("%d MiB", smallest>>20)
	}
	return append(rows, row{"smallest memory limit " + what + " passed at", best, target}), nil
}

func memLimitRun(bin string, limit int64, watch time.Duration) ([]row, bool, error) {
	cg, err := memlimit.New("regente-bench-mem", limit)
	if err != nil {
		return nil, false, err
	}
	defer cg.Remove()
	s, err := newInstance(bin)
	if err != nil {
		return nil, false, err
	}
	s.agent, s.wrap, s.extra = true, cg.Wrap(), []string{cg.KubeletArg()}
	defer cleanupNode(s)
	if err := writeBenchImage(s); err != nil {
		return nil, false, err
	}
	fmt.Fprintf(os.Stderr, "memory limit %d MiB: starting the node and 10 pods\n", limit>>20)
	begin := time.Now()
	_, err = s.startToNodeReady()
	if err == nil {
		_, err = s.addonsReady(begin)
	}
	defer func() {
		if s.cmd != nil && s.cmd.Process != nil {
			s.stop()
		}
	}()
	client, cerr := s.client()
	for i := 0; err == nil && cerr == nil && i < 10; i++ {
		_, err = startPod(client, fmt.Sprintf("small-%d", i))
	}
	if err = errors.Join(err, cerr); err != nil {
		// Failing to come up inside the limit is a result, not a bench error.
		st, _ := cg.Stats()
		return []row{{fmt.Sprintf("single node + 10 pods in %d MiB", limit>>20),
			fmt.Sprintf("FAIL: did not come up (%v); OOM kills %d", err, st.OOMKills), "-"}}, false, nil
	}
	node, err := client.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{})
	if err != nil || len(node.Items) != 1 {
		return nil, false, fmt.Errorf("list the node: %v", err)
	}
	return watchInLimit(cg, client, node.Items[0].Name, fmt.Sprintf("single node + 10 pods in %d MiB, %s", limit>>20, watch), watch)
}

// watchInLimit watches node, whose processes cg holds, for watch and
// returns the rows for what, and whether it passed: no OOM kill, the node
// Ready throughout, every API call answered and get/create p99 under 1 s.
func watchInLimit(cg *memlimit.Cgroup, client kubernetes.Interface, node, what string, watch time.Duration) ([]row, bool, error) {
	before, err := cg.Stats()
	if err != nil {
		return nil, false, err
	}
	fmt.Fprintf(os.Stderr, "%s: watching\n", what)
	p := memlimit.Watch(context.Background(), client, "default", node, watch, time.Second)
	after, err := cg.Stats()
	if err != nil {
		return nil, false, err
	}
	get, create := memlimit.P99(p.Gets), memlimit.P99(p.Creates)
	pass := after.OOMKills == 0 && p.NotReady == 0 && len(p.Errors) == 0 && get < time.Second && create < time.Second
	verdict := "pass"
	if !pass {
		verdict = fmt.Sprintf("FAIL (%d failed calls, not Ready in %d of %d samples)", len(p.Errors), p.NotReady, p.Samples)
	}
	return []row{
		{what, verdict, "pass"},
		{"  OOM kills; major page faults", fmt.Sprintf("%d; %.1f/s", after.OOMKills, float64(after.MajorFaults-before.MajorFaults)/watch.Seconds()), "0; low"},
		{"  charged at the end (anonymous); peak", fmt.Sprintf("%s (%s); %s", mib(after.Usage), mib(after.Anon), mib(after.Peak)), "-"},
		{"  API p99 get; create", fmt.Sprintf("%s; %s", get.Round(time.Millisecond), create.Round(time.Millisecond)), "< 1s"},
	}, pass, nil
}

// benchAgentMemLimit runs an agent-only node (regente agent, containerd,
// its shims, CoreDNS and 10 busybox pods) inside a memory cgroup of each
// of limits in turn, joined to a --disable-agent server outside it, as
// TestAgentInMemoryLimit does at 256 MiB, and watches it as benchMemLimit
// does.
func benchAgentMemLimit(bin string, limits []int64, watch time.Duration) ([]row, error) {
	scratch, err := os.MkdirTemp("", "regente-bench-agent-mem-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(scratch)
	archive := filepath.Join(scratch, "busybox.tar")
	if err := writeBenchImageTo(archive); err != nil {
		return nil, err
	}
	image, err := os.ReadFile(archive)
	if err != nil {
		return nil, err
	}
	return eachLimit(limits, "an agent-only node with 10 pods", "≤ 256 MiB", func(limit int64) ([]row, bool, error) {
		return agentMemLimitRun(bin, image, limit, watch)
	})
}

func agentMemLimitRun(bin string, image []byte, limit int64, watch time.Duration) ([]row, bool, error) {
	cg, err := memlimit.New("regente-bench-agent-mem", limit)
	if err != nil {
		return nil, false, err
	}
	defer cg.Remove()
	what := fmt.Sprintf("agent-only node + CoreDNS + 10 pods in %d MiB, %s", limit>>20, watch)
	fmt.Fprintf(os.Stderr, "%s: starting a server outside the limit and the agent inside\n", what)
	c, err := startBenchCluster(bin, benchClusterOptions{bridge: "rgbench1", subnet: "10.97.0",
		images: map[string][]byte{"busybox.tar": image}, serverArgs: []string{"--disable-agent"},
		agentCgroup: "/" + cg.Name, agentWrap: cg.Wrap()})
	if err == nil {
		defer c.Close()
		for i := 0; err == nil && i < 10; i++ {
			_, err = startPod(c.client, fmt.Sprintf("small-%d", i))
		}
		if err == nil {
			err = waitFor(3*time.Minute, "CoreDNS ready on the agent", func() bool {
				d, err := c.client.AppsV1().Deployments("kube-system").Get(context.Background(), "coredns", metav1.GetOptions{})
				return err == nil && d.Status.ReadyReplicas > 0
			})
		}
	}
	if err != nil {
		// Failing to come up inside the limit is a result, not a bench error.
		st, _ := cg.Stats()
		return []row{{what, fmt.Sprintf("FAIL: did not come up (%v); OOM kills %d", err, st.OOMKills), "-"}}, false, nil
	}
	return watchInLimit(cg, c.client, "a1", what, watch)
}
