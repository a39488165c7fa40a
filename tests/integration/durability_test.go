//go:build integration

package integration

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"regente.io/regente/tests/faults"
)

// killsUnderLoad is the short form of the kill -9 fault; the bench
// (-only faults) runs 20.
const killsUnderLoad = 5

// TestKill9UnderLoad kills the server (SQLite) with SIGKILL at random
// moments while a steady load creates and updates ConfigMaps and a watch
// follows them, restarts it each time, and checks that no acknowledged
// write was lost and that the watch neither skipped nor repeated a
// revision.
func TestKill9UnderLoad(t *testing.T) {
	bin := requirements(t)
	s := newServer(t, bin)
	s.start()
	ctx := context.Background()
	load, err := faults.Start(ctx, s.restConfig(), faults.Options{Namespace: "durable", Rate: 200})
	if err != nil {
		t.Fatal(err)
	}
	for i := range killsUnderLoad {
		time.Sleep(time.Second + rand.N(3*time.Second))
		before := load.Acknowledged()
		s.kill()
		killed := time.Now()
		s.start()
		recovery, err := load.WaitForAck(ctx, killed, time.Minute)
		if err != nil {
			t.Fatalf("kill %d: %v:\n%s", i+1, err, tail(s.log.String()))
		}
		t.Logf("kill %d after %d acknowledged writes: writes acknowledged again %s later", i+1, before, recovery.Round(time.Millisecond))
	}
	time.Sleep(2 * time.Second)
	report, err := load.Stop(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("after %d kills: %s", killsUnderLoad, report)
	if report.Acknowledged < 1000 {
		t.Errorf("only %d writes acknowledged: the load did not run", report.Acknowledged)
	}
	if err := report.Err(); err != nil {
		t.Fatal(err)
	}
}

// stopLoad lets the watch catch up, stops load, and fails t when fewer
// than minAcked writes were acknowledged, or when one was lost or the
// watch skipped or repeated a revision.
func stopLoad(t *testing.T, ctx context.Context, load *faults.Load, minAcked int) {
	t.Helper()
	time.Sleep(2 * time.Second)
	report, err := load.Stop(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s", report)
	if report.Acknowledged < minAcked {
		t.Errorf("only %d writes acknowledged: the load did not run", report.Acknowledged)
	}
	if err := report.Err(); err != nil {
		t.Error(err)
	}
}
