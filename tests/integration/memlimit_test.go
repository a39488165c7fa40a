//go:build integration

package integration

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"regente.io/regente/tests/memlimit"
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
	watch := time.Minute
	if v := os.Getenv("REGENTE_MEMLIMIT_WATCH"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("REGENTE_MEMLIMIT_WATCH=%q: %v", v, err)
		}
		watch = d
	}
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
	s.apply(`apiVersion: apps/v1
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
`)
	s.kubectl("rollout", "status", "deployment/small", "--timeout=180s")
	s.kubectl("wait", "--for=condition=Available", "deployment", "--all", "-n", "kube-system", "--timeout=180s")
	node := strings.TrimPrefix(strings.TrimSpace(s.kubectl("get", "nodes", "-o", "name")), "node/")

	before, err := cg.Stats()
	if err != nil {
		t.Fatal(err)
	}
	probe := memlimit.Watch(context.Background(), s.client(), "default", node, watch, time.Second)
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
	if out := s.kubectl("get", "pods", "-l", "app=small", "-o", "jsonpath={range .items[*]}{.status.phase}/{.status.containerStatuses[0].restartCount} {end}"); strings.Count(out, "Running/0") != 10 {
		t.Errorf("pods (phase/restarts): %s", out)
	}
}
