package datadir

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

func TestLockIsExclusiveAndKeptAcrossStarts(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data", "agent")
	file := filepath.Join(dir, "lock")
	first := &Lock{Dirs: []string{dir}, File: file}
	if err := first.Start(ctx); err != nil {
		t.Fatal(err)
	}
	// The agent takes its lock before the join; its manager starts it again.
	if err := first.Start(ctx); err != nil {
		t.Fatalf("second Start of a held lock: %v", err)
	}
	second := &Lock{Dirs: []string{dir}, File: file}
	if err := second.Start(ctx); err == nil || !strings.Contains(err.Error(), "already running") {
		t.Fatalf("another Lock on the same file: %v, want an error that one is already running", err)
	}
	if err := CheckNotLocked(file); err == nil {
		t.Error("CheckNotLocked passed while the lock was held")
	}
	if err := first.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := first.Stop(ctx); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	if err := second.Start(ctx); err != nil {
		t.Fatalf("Lock after the first was released: %v", err)
	}
	second.Stop(ctx)
}
