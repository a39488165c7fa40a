//go:build integration

package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"regente.io/regente/tests/s3server"
)

// TestSnapshotRestore snapshots a live datastore, SQLite and embedded etcd,
// under concurrent writes and restores it into a fresh data dir: every
// write acknowledged before the snapshot began is there. Damaged snapshots
// and snapshots of the other kind are refused. The snapshot also goes to
// an S3 server on loopback, and the fresh data dir is restored from there.
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
	store, err := s3server.Start("127.0.0.1", "AKREGENTETEST", "s3-secret-never-logged", "snapshots")
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	s3Args := []string{"--etcd-s3", "--etcd-s3-endpoint", store.Endpoint, "--etcd-s3-insecure", "--etcd-s3-bucket", "snapshots", "--etcd-s3-folder", t.Name()}
	s3Keys := []string{"--etcd-s3-access-key", store.AccessKey, "--etcd-s3-secret-key", store.SecretKey}
	where := "s3://snapshots/" + t.Name()
	// The save takes its S3 keys from AWS's variables.
	save := exec.Command(bin, append([]string{"etcd-snapshot", "save", "--data-dir", s.dataDir, "--name", "under-load"}, s3Args...)...)
	save.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+store.AccessKey, "AWS_SECRET_ACCESS_KEY="+store.SecretKey)
	out, err := save.CombinedOutput()
	time.Sleep(time.Second) // writes go on after the snapshot, too
	stopWriter()
	wg.Wait()
	if err != nil {
		t.Fatalf("etcd-snapshot save: %v\n%s", err, out)
	}
	t.Logf("%d creates acknowledged before the snapshot, %d in all: %s", before, acked.Load(), strings.TrimSpace(string(out)))
	if !strings.Contains(string(out), "uploaded under-load to "+where) {
		t.Errorf("etcd-snapshot save --etcd-s3 did not say it uploaded to %s:\n%s", where, out)
	}
	if out, err := exec.Command(bin, "etcd-snapshot", "ls", "--data-dir", s.dataDir).CombinedOutput(); err != nil || !strings.Contains(string(out), "under-load") {
		t.Errorf("etcd-snapshot ls: %v\n%s", err, out)
	}
	testSnapshotS3(t, bin, s, s3Args, s3Keys, where, store)
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

	// Restore into a fresh data dir straight from S3 with the token, then
	// start from it: the cluster keeps its CAs, so the old admin
	// credentials and the join token still work.
	restore := slices.Concat(fresh.args, []string{"--cluster-reset", "--cluster-reset-restore-path", "under-load", "--token", token}, s3Args, s3Keys)
	if out, err := exec.Command(bin, restore...).CombinedOutput(); err != nil ||
		!strings.Contains(string(out), "start regente again without --cluster-reset") || !strings.Contains(string(out), "Restored the cluster's CAs and keys") ||
		!strings.Contains(string(out), "Downloading the snapshot") {
		t.Fatalf("restore from S3: %v\n%s", err, out)
	} else if strings.Contains(string(out), store.SecretKey) {
		t.Errorf("the restore logged the S3 secret key:\n%s", out)
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

// testSnapshotS3 lists, prunes and refuses bad credentials against the S3
// copy of the running server s's snapshots, and reads the S3 settings
// from a Secret.
func testSnapshotS3(t *testing.T, bin string, s *server, s3Args, s3Keys []string, where string, store *s3server.Server) {
	verb := func(args ...string) (string, error) {
		out, err := exec.Command(bin, append(append([]string{"etcd-snapshot"}, args...), "--data-dir", s.dataDir)...).CombinedOutput()
		return string(out), err
	}
	// k3s's verb names work too: --s3-access-key.
	out, err := verb(slices.Concat([]string{"ls"}, s3Args, []string{"--s3-access-key", store.AccessKey, "--s3-secret-key", store.SecretKey})...)
	if err != nil || !strings.Contains(out, where+"/under-load.db") {
		t.Errorf("etcd-snapshot ls --etcd-s3 does not list %s/under-load.db: %v\n%s", where, err, out)
	}
	out, err = verb(slices.Concat([]string{"save"}, s3Args, s3Keys)...)
	if err != nil {
		t.Fatalf("etcd-snapshot save: %v\n%s", err, out)
	}
	out, err = verb(slices.Concat([]string{"prune", "--snapshot-retention", "0"}, s3Args, s3Keys)...)
	if err != nil || !strings.Contains(out, "from "+where) {
		t.Errorf("etcd-snapshot prune --etcd-s3 removed no on-demand snapshot from S3: %v\n%s", err, out)
	}
	if out, _ := verb(slices.Concat([]string{"ls"}, s3Args, s3Keys)...); strings.Contains(out, "on-demand-") || !strings.Contains(out, "under-load") {
		t.Errorf("after prune: want under-load only:\n%s", out)
	}
	out, err = verb(slices.Concat([]string{"ls"}, s3Args, []string{"--etcd-s3-access-key", store.AccessKey, "--etcd-s3-secret-key", "wrong-secret"})...)
	if err == nil || !strings.Contains(out, "reach the S3 bucket snapshots") || strings.Contains(out, "wrong-secret") {
		t.Errorf("a wrong S3 secret key: want a refusal naming the bucket and not the key, got %v:\n%s", err, out)
	}
	// The settings in a Secret, as k3s's --etcd-s3-config-secret.
	_, err = s.client().CoreV1().Secrets("kube-system").Create(context.Background(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "s3-config"},
		StringData: map[string]string{"etcd-s3-endpoint": store.Endpoint, "etcd-s3-insecure": "true", "etcd-s3-bucket": "snapshots",
			"etcd-s3-folder": t.Name(), "etcd-s3-access-key": store.AccessKey, "etcd-s3-secret-key": store.SecretKey},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if out, err := verb("ls", "--etcd-s3", "--etcd-s3-config-secret", "s3-config"); err != nil || !strings.Contains(out, where+"/under-load.db") {
		t.Errorf("etcd-snapshot ls with --etcd-s3-config-secret: %v\n%s", err, out)
	}
}
