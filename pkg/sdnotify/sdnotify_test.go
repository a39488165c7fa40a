package sdnotify

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"
)

func TestReadyTellsTheSocketDetachTookFromTheEnvironment(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", path)
	ctx := Detach(context.Background())
	if v, ok := os.LookupEnv("NOTIFY_SOCKET"); ok {
		t.Fatalf("NOTIFY_SOCKET=%q is still set: the in-process kubelet and containerd would notify early", v)
	}
	r := &Ready{What: "regente server"}
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 256)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(buf[:n]); got != "READY=1\nSTATUS=regente server is running" {
		t.Errorf("notified %q", got)
	}
	// Without a socket nothing is sent and nothing fails.
	if err := (&Ready{What: "x"}).Start(context.Background()); err != nil {
		t.Fatal(err)
	}
}
