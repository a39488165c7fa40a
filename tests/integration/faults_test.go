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
