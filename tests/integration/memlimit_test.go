//go:build integration

package integration

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"regente.io/regente/tests/memlimit"
	"regente.io/regente/tests/nscluster"
)

// TestNodeInMemoryLimit runs a whole single node (regente, containerd,
// shims, the default add-ons and 10 busybox pods) inside a 768 MiB memory
// cgroup, with the kubelet's cgroup root in it so pods count too, and
// checks it runs well there: no OOM kill anywhere in the tree, the node
// stays Ready, and API gets and creates keep a p99 under 1 s. CI watches
// for a minute (REGENTE_MEMLIMIT_WATCH sets it); `hack/bench.sh -only
// memlimit` runs ten minutes at several limits.
func TestNodeInMemoryLimit(t *testing.T) {
	bin := requirements(t)
	const limit = 768 << 20
	watch := memlimitWatch(t)
	cg, err := memlimit.New("regente-memtest", limit)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cg.Remove) // after the node's cleanup, which runs first
	const image = "regente.invalid/busybox:mem"
	s := newNode(t, bin, map[string][]byte{"busybox.tar": busyboxImage(t, image)}, cg.KubeletArg())
	s.wrap = cg.Wrap()
	s.start()
	s.waitNodeReady(t)
	s.apply(smallPods(image))
	s.kubectl("rollout", "status", "deployment/small", "--timeout=180s")
	s.kubectl("wait", "--for=condition=Available", "deployment", "--all", "-n", "kube-system", "--timeout=180s")
	node := strings.TrimPrefix(strings.TrimSpace(s.kubectl("get", "nodes", "-o", "name")), "node/")

	checkInMemoryLimit(t, cg, s.client(), node, watch)
	if out := s.kubectl("get", "pods", "-l", "app=small", "-o", smallPodsState); strings.Count(out, "Running/0") != 10 {
		t.Errorf("pods (phase/restarts): %s", out)
	}
}

// TestAgentInMemoryLimit runs an agent-only node (regente agent,
// containerd, shims, CoreDNS and 10 busybox pods) inside a 256 MiB memory
// cgroup, joined to a server with --disable-agent outside it, each in its
// own network namespace, with the checks of TestNodeInMemoryLimit.
// REGENTE_MEMLIMIT_AGENT_MIB tries another limit, to find the smallest
// that passes.
func TestAgentInMemoryLimit(t *testing.T) {
	bin := requirements(t)
	limit := int64(256 << 20)
	if v := os.Getenv("REGENTE_MEMLIMIT_AGENT_MIB"); v != "" {
		mib, err := strconv.ParseInt(v, 10, 64)
		if err != nil || mib <= 0 {
			t.Fatalf("REGENTE_MEMLIMIT_AGENT_MIB=%q: want a number of MiB", v)
		}
		limit = mib << 20
	}
	watch := memlimitWatch(t)
	const image = "regente.invalid/busybox:mem"
	var cg *memlimit.Cgroup
	network := nscluster.Network{Bridge: mnNet.Bridge, Subnet: mnNet.Subnet, Names: []string{"srv", "a1"}}
	c := newClusterWith(t, bin, map[string][]byte{"busybox.tar": busyboxImage(t, image)}, network, clusterOptions{
		serverArgs: []string{"--disable-agent"},
		agentCgroup: func(t *testing.T, name string) (string, []string) {
			var err error
			if cg, err = memlimit.New("rg-mem-"+name, limit); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(cg.Remove) // after the nodes' cleanup, which runs first
			return "/" + cg.Name, cg.Wrap()
		},
	})
	c.apply(smallPods(image))
	c.kubectl("rollout", "status", "deployment/small", "--timeout=180s")
	c.kubectl("wait", "--for=condition=Available", "deployment", "--all", "-n", "kube-system", "--timeout=180s")
	cfg, err := clientcmd.BuildConfigFromFlags("", c.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	checkInMemoryLimit(t, cg, kubernetes.NewForConfigOrDie(cfg), "a1", watch)
	if out := c.kubectl("get", "pods", "-l", "app=small", "-o", smallPodsState); strings.Count(out, "Running/0") != 10 {
		t.Errorf("pods (phase/restarts): %s", out)
	}
}

// smallPodsState prints each small pod's phase and restart count.
const smallPodsState = "jsonpath={range .items[*]}{.status.phase}/{.status.containerStatuses[0].restartCount} {end}"

// smallPods is a Deployment of 10 busybox pods that sleep.
func smallPods(image string) string {
	return `apiVersion: apps/v1
kind: Deployment
metadata: {name: small}
spec:
  replicas: 10
  selector: {matchLabels: {app: small}}
  template:
    metadata: {labels: {app: small}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: ` + image + `
        imagePullPolicy: Never
        command: ["/bin/busybox", "sleep", "86400"]
`
}

// memlimitWatch is how long the memory tests watch: a minute in CI,
// REGENTE_MEMLIMIT_WATCH to change it.
func memlimitWatch(t *testing.T) time.Duration {
	v := os.Getenv("REGENTE_MEMLIMIT_WATCH")
	if v == "" {
		return time.Minute
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		t.Fatalf("REGENTE_MEMLIMIT_WATCH=%q: %v", v, err)
	}
	return d
}

// checkInMemoryLimit watches node for d and fails the test on an OOM kill
// in cg, a sample where the node was not Ready, a failed API call, or a
// get or create p99 of a second or more.
func checkInMemoryLimit(t *testing.T, cg *memlimit.Cgroup, client kubernetes.Interface, node string, watch time.Duration) {
	t.Helper()
	limit := cg.Limit
	before, err := cg.Stats()
	if err != nil {
		t.Fatal(err)
	}
	probe := memlimit.Watch(context.Background(), client, "default", node, watch, time.Second)
	after, err := cg.Stats()
	if err != nil {
		t.Fatal(err)
	}
	faults := float64(after.MajorFaults-before.MajorFaults) / watch.Seconds()
	t.Logf("limit %d MiB: usage %d MiB (anonymous %d MiB), peak %d MiB, OOM kills %d, major faults %.1f/s; over %s: get p99 %s, create p99 %s, not Ready %d of %d samples",
		limit>>20, after.Usage>>20, after.Anon>>20, after.Peak>>20, after.OOMKills, faults, watch,
		memlimit.P99(probe.Gets).Round(time.Millisecond), memlimit.P99(probe.Creates).Round(time.Millisecond), probe.NotReady, probe.Samples)

	if after.OOMKills != 0 {
		t.Errorf("%d processes were OOM-killed in the %d MiB cgroup", after.OOMKills, limit>>20)
	}
	if probe.NotReady != 0 {
		t.Errorf("the node was not Ready in %d of %d samples", probe.NotReady, probe.Samples)
	}
	for _, e := range probe.Errors {
		t.Errorf("API call failed: %s", e)
	}
	for what, d := range map[string][]time.Duration{"get": probe.Gets, "create": probe.Creates} {
		if p99 := memlimit.P99(d); p99 >= time.Second {
			t.Errorf("%s p99 %s, want under 1s", what, p99)
		}
	}
}
