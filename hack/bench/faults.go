package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"regente.io/regente/tests/faults"
)

// benchFaults is the long form of the fault suite (issue 23 §1): for each
// datastore, a server under the tests/faults load is killed with SIGKILL
// kills times at random moments and restarted, and the table gives the
// writes acknowledged, lost (must be 0), the watch anomalies (must be 0)
// and the time from each kill until a write was acknowledged again. The
// integration suite runs 5 kills on SQLite.
func benchFaults(bin string, kills int) ([]row, error) {
	var rows []row
	for _, ds := range []struct {
		name  string
		extra []string
	}{
		{"SQLite", nil},
		{"embedded etcd, 1 member", []string{"--cluster-init"}},
	} {
		r, err := killUnderLoad(bin, ds.extra, kills)
		if err != nil {
			return rows, fmt.Errorf("%s: %w", ds.name, err)
		}
		r.metric = fmt.Sprintf("kill -9 of the server %d times under load, %s", kills, ds.name)
		rows = append(rows, r)
	}
	return rows, nil
}

func killUnderLoad(bin string, extra []string, kills int) (row, error) {
	s, err := newInstance(bin)
	if err != nil {
		return row{}, err
	}
	defer os.RemoveAll(s.dir)
	s.extra = extra
	if _, err := s.start(); err != nil {
		return row{}, err
	}
	defer s.stop()
	cfg, err := clientcmd.BuildConfigFromFlags("", s.kubeconfig)
	if err != nil {
		return row{}, err
	}
	ctx := context.Background()
	load, err := faults.Start(ctx, cfg, faults.Options{Namespace: "faults", Rate: 200})
	if err != nil {
		return row{}, err
	}
	var recovery []time.Duration
	for i := range kills {
		time.Sleep(time.Second + rand.N(5*time.Second))
		s.cmd.Process.Kill()
		s.cmd.Wait()
		killed := time.Now()
		if _, err := s.start(); err != nil {
			return row{}, fmt.Errorf("restart after kill %d: %w", i+1, err)
		}
		d, err := load.WaitForAck(ctx, killed, time.Minute)
		if err != nil {
			return row{}, fmt.Errorf("kill %d: %w", i+1, err)
		}
		recovery = append(recovery, d)
		fmt.Fprintf(os.Stderr, "kill %d: writes acknowledged again after %s\n", i+1, d.Round(time.Millisecond))
	}
	time.Sleep(2 * time.Second)
	report, err := load.Stop(ctx)
	if err != nil {
		return row{}, err
	}
	for _, a := range append(report.Lost, report.Anomalies...) {
		fmt.Fprintln(os.Stderr, "fault:", a)
	}
	slices.Sort(recovery)
	return row{value: fmt.Sprintf("%d writes acknowledged (%d refused while down); lost %d, watch anomalies %d (%d relists); writes back after p50 %s, max %s",
		report.Acknowledged, report.Failed, len(report.Lost), len(report.Anomalies), report.Relists,
		median(recovery).Round(10*time.Millisecond), recovery[len(recovery)-1].Round(10*time.Millisecond)),
		target: "0 lost, 0 anomalies"}, nil
}
