//go:build integration

package integration

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"regente.io/regente/tests/faults"
)

// TestDiskFull runs a server on SQLite whose data dir is a small
// filesystem, fills it under a steady write load, and checks that writes
// then fail with an error that says the disk is full, that nothing
// acknowledged is lost, and that the same server takes writes again by
// itself once space is freed.
func TestDiskFull(t *testing.T) {
	bin := requirements(t)
	s := newServer(t, bin)
	small := filepath.Dir(s.dataDir)
	if err := syscall.Mount("tmpfs", small, "tmpfs", 0, "size=64m,mode=0700"); err != nil {
		t.Fatalf("mount a 64 MiB tmpfs on %s: %v", small, err)
	}
	t.Cleanup(func() { syscall.Unmount(small, syscall.MNT_DETACH) })
	if err := os.WriteFile(filepath.Join(small, "config.yaml"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s.start()
	ctx := context.Background()
	load, err := faults.Start(ctx, s.restConfig(), faults.Options{Namespace: "full", Rate: 50})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)

	filler := filepath.Join(small, "filler")
	if err := fill(filler); err != nil {
		t.Fatal(err)
	}
	// Growing values use the free pages SQLite still holds, then fail.
	cms := s.client().CoreV1().ConfigMaps("full")
	var refused error
	eventually(t, 60*time.Second, "a write refused on the full disk", func() error {
		name := fmt.Sprintf("big-%d", time.Now().UnixNano())
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string]string{"v": strings.Repeat("x", 256<<10)}}
		if _, err := cms.Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			refused = err
			return nil
		}
		return errors.New("still accepted")
	})
	if !strings.Contains(refused.Error(), "disk is full") {
		t.Errorf("a write on the full disk failed with %q, which does not say the disk is full", refused)
	}
	time.Sleep(5 * time.Second)
	full := time.Now()
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	recovery, err := load.WaitForAck(ctx, full, 30*time.Second)
	if err != nil {
		t.Fatalf("%v after space was freed:\n%s", err, tail(s.log.String()))
	}
	select {
	case <-s.exited:
		t.Fatalf("regente exited on the full disk:\n%s", tail(s.log.String()))
	default:
	}
	time.Sleep(2 * time.Second)
	report, err := load.Stop(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("disk full: %q; writes acknowledged again %s after space was freed; %s", refused, recovery.Round(time.Millisecond), report)
	if report.Failed == 0 {
		t.Errorf("no write of the load failed while the disk was full")
	}
	if err := report.Err(); err != nil {
		t.Fatal(err)
	}
}

// fill writes path until its filesystem has no space left.
func fill(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	chunk := make([]byte, 1<<20)
	for {
		if _, err := f.Write(chunk); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				return nil
			}
			return fmt.Errorf("fill %s: %w", path, err)
		}
	}
}

// TestDamagedDatastoreAtStart damages a stopped server's datastore, an
// SQLite file cut short and an embedded etcd member's WAL with a record
// overwritten, and checks that the next start exits non-zero naming the
// damaged file and the restore command, and leaves the file as it was:
// never an empty cluster started on top, never a start retrying for ever.
func TestDamagedDatastoreAtStart(t *testing.T) {
	bin := requirements(t)
	for _, tc := range []struct {
		name   string
		extra  []string
		damage func(t *testing.T, dataDir string) (named, untouched string) // what the error names, what must not change
	}{
		{"sqlite truncated", nil, func(t *testing.T, dataDir string) (string, string) {
			path := filepath.Join(dataDir, "server", "db", "state.db")
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(path, fi.Size()/2); err != nil {
				t.Fatal(err)
			}
			return path, path
		}},
		{"etcd wal record overwritten", []string{"--cluster-init"}, func(t *testing.T, dataDir string) (string, string) {
			wals, _ := filepath.Glob(filepath.Join(dataDir, "server", "db", "etcd", "member", "wal", "*.wal"))
			if len(wals) == 0 {
				t.Fatal("no etcd WAL file")
			}
			b, err := os.ReadFile(wals[0])
			if err != nil {
				t.Fatal(err)
			}
			// The WAL is preallocated with zeros: damage the middle of what was written.
			end := len(strings.TrimRight(string(b), "\x00"))
			f, err := os.OpenFile(wals[0], os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.WriteAt([]byte(strings.Repeat("\x5a", 4096)), int64(end/2)); err != nil {
				t.Fatal(err)
			}
			// etcd opens its bolt database before it reads the WAL.
			return filepath.Join(dataDir, "server", "db", "etcd"), filepath.Dir(wals[0])
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, bin, tc.extra...)
			s.start()
			for i := range 20 {
				s.kubectl("create", "configmap", fmt.Sprintf("c%d", i), "--from-literal=v="+strings.Repeat("x", 2000))
			}
			if code, _ := s.stop(); code != 0 {
				t.Fatalf("stop: exit code %d", code)
			}
			damaged, untouched := tc.damage(t, s.dataDir)
			before := treeDigest(t, untouched)
			code, out := runBinary(t, bin, s.args...)
			if code == 0 {
				t.Fatalf("exit code 0 on a damaged datastore:\n%s", tail(out))
			}
			for _, want := range []string{damaged, "is damaged", "--cluster-reset-restore-path"} {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, tail(out))
				}
			}
			if after := treeDigest(t, untouched); after != before {
				t.Errorf("the damaged %s was changed by the refused start", untouched)
			}
		})
	}
}
