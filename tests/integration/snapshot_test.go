//go:build integration

package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestSnapshotRestore snapshots a live datastore, SQLite and embedded etcd,
// under concurrent writes and restores it into a fresh data dir: every
// write acknowledged before the snapshot began is there. Damaged snapshots
// and snapshots of the other kind are refused.
func TestSnapshotRestore(t *testing.T) {
	bin := requirements(t)
	for _, ds := range []struct {
		name, other string
		args        []string
		kept        string // the replaced datastore, kept aside
	}{
		{name: "sqlite", other: "etcd", kept: "old-*/state.db"},
		{name: "etcd", other: "sqlite", args: []string{"--cluster-init"}, kept: "etcd-old-*/member"},
	} {
		t.Run(ds.name, func(t *testing.T) {
			testSnapshotRestore(t, bin, ds.args, ds.kept, ds.other)
		})
	}
}

func testSnapshotRestore(t *testing.T, bin string, args []string, kept, other string) {
	s := newServer(t, bin, args...)
	s.start()
	client := s.client()

	// A writer creates ConfigMaps one after another; acked counts the
	// creates the API server acknowledged.
	var acked atomic.Int64
	ctx, stopWriter := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ctx.Err() == nil; i++ {
			cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%d", i)}, Data: map[string]string{"i": fmt.Sprint(i)}}
			if _, err := client.CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
				return
			}
			acked.Store(int64(i + 1))
		}
	}()
	eventually(t, 30*time.Second, "writes flowing", func() error {
		if acked.Load() < 100 {
			return fmt.Errorf("%d acked", acked.Load())
		}
		return nil
	})
	before := acked.Load()
	snapshots := filepath.Join(s.dataDir, "server", "db", "snapshots")
	out, err := exec.Command(bin, "etcd-snapshot", "save", "--data-dir", s.dataDir, "--name", "under-load").CombinedOutput()
	time.Sleep(time.Second) // writes go on after the snapshot, too
	stopWriter()
	wg.Wait()
	if err != nil {
		t.Fatalf("etcd-snapshot save: %v\n%s", err, out)
	}
	t.Logf("%d creates acknowledged before the snapshot, %d in all: %s", before, acked.Load(), strings.TrimSpace(string(out)))
	if out, err := exec.Command(bin, "etcd-snapshot", "ls", "--data-dir", s.dataDir).CombinedOutput(); err != nil || !strings.Contains(string(out), "under-load") {
		t.Errorf("etcd-snapshot ls: %v\n%s", err, out)
	}
	snap := filepath.Join(snapshots, "under-load.db")
	// One server per host: the controller-manager's and scheduler's ports
	// are fixed.
	if code, _ := s.stop(); code != 0 {
		t.Fatalf("stop exit code %d", code)
	}

	// Damaged or foreign snapshots are refused, and nothing is replaced.
	truncated := filepath.Join(t.TempDir(), "truncated.db")
	data, _ := os.ReadFile(snap)
	os.WriteFile(truncated, data[:len(data)/2], 0o600)
	sidecar, _ := os.ReadFile(snap + ".json")
	os.WriteFile(truncated+".json", sidecar, 0o600)
	fresh := newServer(t, bin, args...)
	foreign := filepath.Join(t.TempDir(), "foreign.db")
	os.WriteFile(foreign, data, 0o600)
	var info map[string]any
	json.Unmarshal(sidecar, &info)
	info["kind"] = other // as if taken on a server of the other kind
	foreignSidecar, _ := json.Marshal(info)
	os.WriteFile(foreign+".json", foreignSidecar, 0o600)
	for file, want := range map[string]string{truncated: "damaged or truncated", "/etc/hostname": "has no checksum file", foreign: "is a" + map[string]string{"etcd": "n etcd", "sqlite": " sqlite"}[other] + " snapshot"} {
		out, err := exec.Command(bin, append(fresh.args, "--cluster-reset", "--cluster-reset-restore-path", file)...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), want) {
			t.Errorf("restore of %s: want a refusal saying %q, got %v:\n%s", file, want, err, out)
		}
	}

	// A fresh machine needs the server token to open the CAs the
	// snapshot carries.
	token := strings.TrimSpace(string(mustRead(t, filepath.Join(s.dataDir, "server", "token"))))
	for _, tc := range []struct {
		extra []string
		want  string
	}{
		{nil, "give that token with --token"},
		{[]string{"--token", "wrong-secret"}, "the token does not open"},
	} {
		other := newServer(t, bin, args...)
		out, err := exec.Command(bin, append(append(other.args, "--cluster-reset", "--cluster-reset-restore-path", snap), tc.extra...)...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), tc.want) {
			t.Errorf("restore on a fresh machine with %v: want a refusal saying %q, got %v:\n%s", tc.extra, tc.want, err, out)
		}
	}

	// Restore into a fresh data dir with the token, then start from it:
	// the cluster keeps its CAs, so the old admin credentials and the
	// join token still work.
	if out, err := exec.Command(bin, append(fresh.args, "--cluster-reset", "--cluster-reset-restore-path", snap, "--token", token)...).CombinedOutput(); err != nil ||
		!strings.Contains(string(out), "start regente again without --cluster-reset") || !strings.Contains(string(out), "Restored the cluster's CAs and keys") {
		t.Fatalf("restore: %v\n%s", err, out)
	}
	fresh.start()
	if got := strings.TrimSpace(string(mustRead(t, filepath.Join(fresh.dataDir, "server", "token")))); got != token {
		t.Errorf("the restored server's token is %q, want the snapshot's cluster's %q", got, token)
	}
	oldAdmin := filepath.Join(t.TempDir(), "old-admin.yaml")
	os.WriteFile(oldAdmin, []byte(strings.ReplaceAll(string(mustRead(t, s.kubeconfig)), fmt.Sprintf(":%d", s.port), fmt.Sprintf(":%d", fresh.port))), 0o600)
	if out, err := exec.Command(bin, "kubectl", "--kubeconfig", oldAdmin, "get", "configmap", "cm-0", "-o", "name").CombinedOutput(); err != nil {
		t.Errorf("the old cluster's admin credentials do not work on the restored one: %v\n%s", err, out)
	}
	list, err := fresh.client().CoreV1().ConfigMaps("default").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, cm := range list.Items {
		have[cm.Name] = true
	}
	for i := range before {
		if !have[fmt.Sprintf("cm-%d", i)] {
			t.Fatalf("cm-%d, acknowledged before the snapshot, is missing after the restore (%d ConfigMaps restored)", i, len(list.Items))
		}
	}
	t.Logf("restored %d ConfigMaps; all %d acknowledged before the snapshot are there", len(list.Items), before)

	// Restoring over an existing datastore keeps the old one aside.
	if out, err := exec.Command(bin, append(s.args, "--cluster-reset", "--cluster-reset-restore-path", snap)...).CombinedOutput(); err != nil {
		t.Fatalf("restore over the old datastore: %v\n%s", err, out)
	}
	if aside, _ := filepath.Glob(filepath.Join(s.dataDir, "server", "db", kept)); len(aside) != 1 {
		t.Errorf("the replaced datastore was not kept aside as %s: %v", kept, aside)
	}
}
