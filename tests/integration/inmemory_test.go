//go:build integration

package integration

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestDatastoreInMemory runs a server with --datastore-in-memory through
// what its users trade for fewer flash writes: the periodic save (a
// configmap survives a kill -9 and a reboot), a kill -9 without a reboot
// (the tmpfs copy is used, nothing lost), a reboot (only what changed
// since the last save is lost), a clean stop (saved, tmpfs gone), a start
// without the option after a kill -9 (the tmpfs copy is saved in), a
// snapshot (of the live copy) and killall after a kill -9 (saves it).
func TestDatastoreInMemory(t *testing.T) {
	bin := requirements(t)
	s := newServer(t, bin)
	runDir := shortTempDir(t)
	memDir := filepath.Join(runDir, "datastore")
	disk := filepath.Join(s.dataDir, "server", "db", "state.db")
	t.Cleanup(func() { exec.Command("umount", "-l", memDir).Run() })
	base := append(slices.Clone(s.args), "--run-dir", runDir)
	startWith := func(extra ...string) {
		t.Helper()
		s.args = append(slices.Clone(base), extra...)
		s.start()
	}
	create := func(name string) {
		t.Helper()
		s.kubectl("create", "configmap", name, "--from-literal=k=v")
	}
	present := func(name string) bool {
		t.Helper()
		_, err := s.client().CoreV1().ConfigMaps("default").Get(context.Background(), name, metav1.GetOptions{})
		return err == nil
	}
	mounted := func() bool {
		b, _ := os.ReadFile("/proc/self/mountinfo")
		return strings.Contains(string(b), " "+memDir+" ")
	}
	reboot := func() {
		t.Helper()
		if out, err := exec.Command("umount", "-l", memDir).CombinedOutput(); err != nil {
			t.Fatalf("unmount the tmpfs, as a reboot would: %v: %s", err, out)
		}
	}

	startWith("--datastore-in-memory", "--datastore-save-interval", "2s")
	if !mounted() {
		t.Fatalf("no tmpfs at %s:\n%s", memDir, tail(s.log.String()))
	}
	create("saved-periodically")
	eventually(t, 30*time.Second, "the periodic save to write the configmap into "+disk, func() error {
		b, _ := os.ReadFile(disk)
		if !bytes.Contains(b, []byte("/registry/configmaps/default/saved-periodically")) {
			return fmt.Errorf("%d bytes, without the configmap", len(b))
		}
		return nil
	})
	s.kill()

	// A kill -9 without a reboot loses nothing.
	startWith("--datastore-in-memory", "--datastore-save-interval", "1h")
	if !strings.Contains(s.log.String(), "that the last run left unsaved") {
		t.Errorf("the start did not say it used the copy left in memory:\n%s", tail(s.log.String()))
	}
	if !present("saved-periodically") {
		t.Fatal("the configmap saved before the kill is gone")
	}
	create("unsaved")
	s.kill()
	startWith("--datastore-in-memory", "--datastore-save-interval", "1h")
	if !present("unsaved") {
		t.Fatal("a configmap written to memory is gone after a kill -9 that left the tmpfs")
	}
	s.kill()

	// A reboot loses only what changed after the last save.
	reboot()
	startWith("--datastore-in-memory", "--datastore-save-interval", "1h")
	if !present("saved-periodically") {
		t.Fatal("the configmap of the periodic save is gone after a reboot")
	}
	if present("unsaved") {
		t.Fatal("a configmap never saved survived the reboot: was the datastore in memory at all?")
	}

	// A clean stop saves everything and removes the tmpfs.
	create("saved-at-stop")
	if code, _ := s.stop(); code != 0 {
		t.Fatalf("exit code %d after SIGTERM:\n%s", code, tail(s.log.String()))
	}
	if mounted() {
		t.Fatalf("the tmpfs at %s is still mounted after a clean stop", memDir)
	}
	startWith("--datastore-in-memory", "--datastore-save-interval", "1h")
	if !present("saved-at-stop") {
		t.Fatal("the configmap written before a clean stop is gone")
	}

	// A start without the option saves in what a killed run left in memory.
	create("left-in-memory")
	s.kill()
	startWith()
	if !present("left-in-memory") {
		t.Fatalf("the configmap left in memory is gone:\n%s", tail(s.log.String()))
	}
	if mounted() {
		t.Fatalf("the tmpfs at %s is still mounted", memDir)
	}
	s.stop()

	// etcd-snapshot copies the live database, and killall saves what a
	// killed run left before it unmounts below the run dir.
	startWith("--datastore-in-memory", "--datastore-save-interval", "1h")
	create("in-memory-only")
	dirs := []string{"--data-dir", s.dataDir, "--run-dir", runDir}
	if code, out := runBinary(t, bin, append([]string{"etcd-snapshot", "save", "--name", "live"}, dirs...)...); code != 0 {
		t.Fatalf("etcd-snapshot save: exit %d: %s", code, out)
	}
	snap, _ := os.ReadFile(filepath.Join(s.dataDir, "server", "db", "snapshots", "live.db"))
	if !bytes.Contains(snap, []byte("/registry/configmaps/default/in-memory-only")) {
		t.Error("the snapshot was not taken from the live database in memory")
	}
	s.kill()
	code, out := runBinary(t, bin, append([]string{"killall"}, dirs...)...)
	if code != 0 || !strings.Contains(out, "saved the in-memory datastore") {
		t.Fatalf("killall: exit %d, without saying it saved the datastore: %s", code, out)
	}
	if mounted() {
		t.Fatalf("the tmpfs at %s is still mounted after killall", memDir)
	}
	startWith()
	if !present("in-memory-only") {
		t.Fatal("the configmap that killall saved is gone")
	}
}
