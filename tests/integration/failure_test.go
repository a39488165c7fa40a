//go:build integration

package integration

import (
	"net"
	"strconv"
	"strings"
	"testing"
)

// TestComponentFailureEndsProcess occupies the scheduler's port: the
// scheduler fails after the datastore and apiserver started, and the whole
// process must stop them and exit non-zero, naming the failing component.
func TestComponentFailureEndsProcess(t *testing.T) {
	bin := requirements(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	s := newServer(t, bin, "--kube-scheduler-arg", "secure-port="+port)
	code, out := runBinary(t, bin, s.args...)
	if code == 0 {
		t.Fatalf("exit code 0 although the scheduler could not start:\n%s", tail(out))
	}
	// The cause is logged before the shutdown starts, since upstream code
	// may exit the process during it.
	for _, want := range []string{"A component failed; stopping", "start scheduler", port, "Kubernetes API is ready"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, tail(out))
		}
	}
}
