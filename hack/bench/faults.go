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
	"regente.io/regente/tests/nscluster"
)

// benchFaults is the long form of the fault suite (issue 23 §1): for each
// datastore, a server under the tests/faults load is killed with SIGKILL
// kills times at random moments and restarted, and the table gives the
// writes acknowledged, lost (must be 0), the watch anomalies (must be 0)
// and the time from each kill until a write was acknowledged again; then
// the same with one of three embedded etcd servers killed at a time. The
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
	r, err := killMembersUnderLoad(bin, kills)
	if err != nil {
		return rows, fmt.Errorf("embedded etcd, 3 members: %w", err)
	}
	r.metric = fmt.Sprintf("kill -9 of one of 3 etcd servers %d times (each in turn) under load", kills)
	return append(rows, r), nil
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
	return crashesUnderLoad(s.kubeconfig, kills, func(int) error {
		s.cmd.Process.Kill()
		s.cmd.Wait()
		return nil
	}, func(int) error {
		_, err := s.start()
		return err
	})
}

// killMembersUnderLoad kills one of three embedded etcd servers at a
// time, each in turn (the first is the one the load's API server runs
// on), and restarts it before the next kill so that quorum holds.
func killMembersUnderLoad(bin string, kills int) (row, error) {
	var r row
	err := etcdCluster(bin, nil, func(kubeconfig string, nodes []*nscluster.Node) error {
		var err error
		r, err = crashesUnderLoad(kubeconfig, kills, func(i int) error {
			nodes[i%len(nodes)].Kill()
			return nil
		}, func(i int) error {
			n := nodes[i%len(nodes)]
			if err := n.Start(); err != nil {
				return err
			}
			return waitFor(3*time.Minute, n.Name+" serving again", (&instance{kubeconfig: ownKubeconfig(n)}).readyz)
		})
		return err
	})
	return r, err
}

// crashesUnderLoad runs the tests/faults load on the API server of
// kubeconfig, crashes a process kills times at random moments with
// crash, restarts it with restart, and reports what the load saw. The
// time a crash cost is from the crash until a write was acknowledged
// again, which may come before the restart when the API server runs on.
func crashesUnderLoad(kubeconfig string, kills int, crash, restart func(i int) error) (row, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
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
		killed := time.Now()
		if err := crash(i); err != nil {
			return row{}, fmt.Errorf("kill %d: %w", i+1, err)
		}
		type ack struct {
			d   time.Duration
			err error
		}
		acked := make(chan ack, 1)
		go func() {
			d, err := load.WaitForAck(ctx, killed, 2*time.Minute)
			acked <- ack{d, err}
		}()
		if err := restart(i); err != nil {
			return row{}, fmt.Errorf("restart after kill %d: %w", i+1, err)
		}
		a := <-acked
		if a.err != nil {
			return row{}, fmt.Errorf("kill %d: %w", i+1, a.err)
		}
		recovery = append(recovery, a.d)
		fmt.Fprintf(os.Stderr, "kill %d: writes acknowledged again after %s\n", i+1, a.d.Round(time.Millisecond))
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
