package loadbalancer

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// backend answers every connection with its name.
func backend(t *testing.T, name string) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte(name))
			c.Close()
		}
	}()
	return ln
}

func TestFailsOverWhenAServerDies(t *testing.T) {
	a, b := backend(t, "a"), backend(t, "b")
	defer b.Close()
	lb := New(Config{Listen: "127.0.0.1:0", Servers: []string{"https://" + a.Addr().String(), "https://" + b.Addr().String()},
		Kubeconfig: func() string { return "" }})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := lb.Init(ctx); err != nil {
		t.Fatal(err)
	}
	if err := lb.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer lb.Stop(context.Background())
	read := func() string {
		t.Helper()
		c, err := net.DialTimeout("tcp", lb.listener.Addr().String(), time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		b, _ := io.ReadAll(c)
		return string(b)
	}
	if got := read(); got != "a" {
		t.Fatalf("first connection reached %q, want the first server", got)
	}
	a.Close()
	if got := read(); got != "b" {
		t.Fatalf("after the first server died, reached %q, want b", got)
	}
	// The configured server is kept as a last resort when the list from
	// the cluster no longer holds it.
	lb.SetServers([]string{b.Addr().String()})
	if got := lb.Servers(); len(got) != 2 {
		t.Errorf("servers %v: want b and the configured first server", got)
	}
}

func TestRemembersLearnedServersForTheNextStart(t *testing.T) {
	stateFile := filepath.Join(t.TempDir(), "lb-servers.json")
	if got := Remembered(stateFile); got != nil {
		t.Fatalf("no state file: remembered %v", got)
	}
	first := New(Config{Servers: []string{"https://10.0.0.1:6443"}, StateFile: stateFile})
	if err := first.remember([]string{"10.0.0.2:6443", "10.0.0.1:6443"}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(stateFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file: %v, %v", fi, err)
	}
	// The next start knows the configured server first, then the learned.
	next := New(Config{Servers: []string{"https://10.0.0.1:6443"}, StateFile: stateFile})
	if err := next.Init(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := next.Servers(); !slices.Equal(got, []string{"10.0.0.1:6443", "10.0.0.2:6443"}) {
		t.Errorf("servers at the next start: %v", got)
	}
	os.WriteFile(stateFile, []byte("not json"), 0o600)
	if got := Remembered(stateFile); got != nil {
		t.Errorf("a damaged state file gave %v", got)
	}
}
