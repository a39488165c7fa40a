//go:build integration

package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"regente.io/regente/pkg/etcd"
	"regente.io/regente/pkg/killall"
	"regente.io/regente/tests/faults"
	"regente.io/regente/tests/nscluster"
)

// partitionFor is how long TestEmbeddedEtcdHA cuts one server off (the
// issue's long form is 60 s).
const partitionFor = 20 * time.Second

// etcdNet holds three servers, each with its node, on embedded etcd.
var etcdNet = nscluster.Network{Bridge: "rget0", Subnet: "10.96.0", Names: []string{"s1", "s2", "s3"}}

// TestEmbeddedEtcdHA runs three servers on embedded etcd, each in its own
// network namespace: writes go through any of them; a member killed with
// SIGKILL, or cut off from the others for partitionFor, leaves the other
// two serving under a steady load without losing an acknowledged write or
// a watch event, and catches up when it is back; a server whose node is deleted
// leaves the etcd cluster and joins again when restarted.
func TestEmbeddedEtcdHA(t *testing.T) {
	bin := requirements(t)
	if err := etcdNet.Setup(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(etcdNet.Teardown)
	root := t.TempDir()
	var nodes []*nscluster.Node
	for i, name := range etcdNet.Names {
		n := &nscluster.Node{Name: name, IP: etcdNet.IP(i), Dir: filepath.Join(root, name), RunDir: "/run/regente"}
		n.DataDir = filepath.Join(n.Dir, "data")
		cgroup, remove, err := nscluster.CgroupRoot("rg-etcd-" + name)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(remove)
		n.Cgroup = cgroup
		nodes = append(nodes, n)
	}
	s1, s2, s3 := nodes[0], nodes[1], nodes[2]
	c := &mnCluster{t: t, bin: bin}
	t.Cleanup(func() {
		saveLogsOnFailure(t, "etcd", nodes)
		for _, n := range []*nscluster.Node{s3, s2, s1} {
			n.Stop(30 * time.Second)
		}
		for _, n := range nodes {
			killall.Node(n.DataDir, filepath.Join(n.Dir, "run"))
		}
	})
	serverArgs := func(n *nscluster.Node, extra ...string) []string {
		return append([]string{bin, "server", "--config", "", "--data-dir", n.DataDir, "--node-ip", n.IP, "--node-name", n.Name,
			"--write-kubeconfig", filepath.Join(n.Dir, "admin.yaml"), "--kubelet-arg=cgroup-root=" + n.Cgroup, nscluster.KubeletEvictionArg,
			"--disable", "coredns,metrics-server,servicelb,local-storage,ingress", "--disable-helm-controller"}, extra...)
	}
	via := map[*nscluster.Node]*mnCluster{}
	serving := func(n *nscluster.Node) {
		t.Helper()
		via[n] = c.servingAt(n, 3*time.Minute)
	}
	// members lists the etcd cluster's voting members and learners as
	// the test sees them through s1's client certificate.
	members := func(through *nscluster.Node) (voting, learners []string, err error) {
		cli, err := etcd.NewClient(filepath.Join(s1.DataDir, "server", "tls"), "https://"+through.IP+":2379")
		if err != nil {
			return nil, nil, err
		}
		defer cli.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		list, err := cli.MemberList(ctx)
		if err != nil {
			return nil, nil, err
		}
		for _, m := range list.Members {
			if m.IsLearner {
				learners = append(learners, etcd.NodeOfMember(m.Name))
			} else {
				voting = append(voting, etcd.NodeOfMember(m.Name))
			}
		}
		slices.Sort(voting)
		return voting, learners, nil
	}
	wantMembers := func(through *nscluster.Node, want ...string) {
		t.Helper()
		eventually(t, 2*time.Minute, fmt.Sprintf("etcd voting members %v", want), func() error {
			voting, learners, err := members(through)
			if err != nil || !slices.Equal(voting, want) || len(learners) > 0 {
				return fmt.Errorf("voting %v, learners %v (%v)", voting, learners, err)
			}
			return nil
		})
	}

	s1.Args = serverArgs(s1, "--cluster-init")
	c.start(s1)
	serving(s1)
	token, err := os.ReadFile(filepath.Join(s1.DataDir, "server", "token"))
	if err != nil {
		t.Fatal(err)
	}
	join := []string{"--server", "https://" + s1.IP + ":6443", "--token", strings.TrimSpace(string(token))}
	for _, n := range []*nscluster.Node{s2, s3} {
		n.Args = serverArgs(n, join...)
		c.start(n)
		serving(n)
	}
	wantMembers(s1, "s1", "s2", "s3")
	if !strings.Contains(s2.Log.String(), "Joined the etcd cluster as a learner") {
		t.Errorf("s2 did not say it joined as a learner")
	}
	eventually(t, 3*time.Minute, "three Ready nodes", func() error {
		out, err := via[s1].kubectlErr("get", "nodes", "-o", `jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status} {end}`)
		if err != nil || strings.Count(out, "=True") != 3 {
			return fmt.Errorf("nodes: %q (%v)", out, err)
		}
		return nil
	})
	// The role labels k3s gives servers with embedded etcd.
	eventually(t, 30*time.Second, "three nodes labeled control-plane and etcd", func() error {
		out, err := via[s1].kubectlErr("get", "nodes", "-l", "node-role.kubernetes.io/control-plane=true,node-role.kubernetes.io/etcd=true", "-o", "name")
		if err != nil || strings.Count(out, "node/") != 3 {
			return fmt.Errorf("labeled: %q (%v)", out, err)
		}
		return nil
	})

	t.Run("one server leads regente's controllers", func(t *testing.T) {
		holder := via[s2].kubectl("get", "lease", "-n", "kube-system", "regente-controllers", "-o", "jsonpath={.spec.holderIdentity}")
		var leaders []string
		for _, n := range nodes {
			if strings.Contains(n.Log.String(), "This server leads regente's controllers") {
				leaders = append(leaders, n.Name)
			}
		}
		if len(leaders) != 1 || !strings.HasPrefix(holder, leaders[0]+"_") {
			t.Errorf("lease holder %q, servers that say they lead: %v", holder, leaders)
		}
	})

	t.Run("writes through any server are read through the others", func(t *testing.T) {
		for _, n := range nodes {
			via[n].kubectl("create", "configmap", "from-"+n.Name, "--from-literal=k="+n.Name)
		}
		for _, reader := range nodes {
			for _, writer := range nodes {
				if out := via[reader].kubectl("get", "configmap", "from-"+writer.Name, "-o", "jsonpath={.data.k}"); out != writer.Name {
					t.Errorf("%s reads %q for %s's ConfigMap", reader.Name, out, writer.Name)
				}
			}
		}
	})

	// underLoad runs the tests/faults load through s1 while fault runs,
	// then checks that no acknowledged write was lost and that the watch
	// neither skipped nor repeated a revision.
	underLoad := func(t *testing.T, namespace string, fault func(load *faults.Load)) {
		t.Helper()
		cfg, err := clientcmd.BuildConfigFromFlags("", via[s1].kubeconfig)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		load, err := faults.Start(ctx, cfg, faults.Options{Namespace: namespace, Rate: 200})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second + rand.N(2*time.Second))
		fault(load)
		stopLoad(t, ctx, load, 500)
	}

	t.Run("a killed member loses no acknowledged write and catches up", func(t *testing.T) {
		underLoad(t, "kill-s2", func(*faults.Load) {
			// The last write s2 acknowledged before it died is on the others.
			via[s2].kubectl("create", "configmap", "acked-by-s2-then-killed")
			s2.Kill()
			if _, err := via[s1].kubectlErr("get", "configmap", "acked-by-s2-then-killed"); err != nil {
				t.Errorf("a write s2 acknowledged just before SIGKILL is lost: %v", err)
			}
			var acked []string
			for i := range 20 {
				writer := []*nscluster.Node{s1, s3}[i%2]
				name := fmt.Sprintf("during-s2-down-%d", i)
				if _, err := via[writer].kubectlErr("create", "configmap", name); err != nil {
					t.Errorf("create through %s with s2 down: %v", writer.Name, err)
					continue
				}
				acked = append(acked, name)
			}
			c.start(s2) // same arguments: it starts from its data
			serving(s2)
			for _, name := range acked {
				if _, err := via[s2].kubectlErr("get", "configmap", name); err != nil {
					t.Errorf("s2, restarted, lacks %s, acknowledged while it was down: %v", name, err)
				}
			}
			wantMembers(s2, "s1", "s2", "s3")
		})
	})

	t.Run("a partitioned member catches up when its link is back", func(t *testing.T) {
		underLoad(t, "partition-s3", func(load *faults.Load) {
			link := "v-" + s3.Name
			if out, err := exec.Command("ip", "link", "set", link, "down").CombinedOutput(); err != nil {
				t.Fatalf("partition s3: %v: %s", err, out)
			}
			cut := time.Now()
			defer exec.Command("ip", "link", "set", link, "up").Run()
			// s1 and s2 are a quorum: writes through s1 go on.
			time.Sleep(3 * time.Second)
			before := load.Acknowledged()
			if _, err := load.WaitForAck(context.Background(), time.Now(), time.Minute); err != nil {
				t.Errorf("writes through s1 with s3 cut off: %v", err)
			}
			time.Sleep(time.Second)
			t.Logf("with s3 cut off, %d writes acknowledged in the second after the first 3 s", load.Acknowledged()-before)
			via[s1].kubectl("create", "configmap", "while-s3-partitioned")
			time.Sleep(partitionFor - time.Since(cut))
			if out, err := exec.Command("ip", "link", "set", link, "up").CombinedOutput(); err != nil {
				t.Fatalf("end the partition: %v: %s", err, out)
			}
			eventually(t, 2*time.Minute, "s3 serves the write made while it was cut off", func() error {
				_, err := via[s3].kubectlErr("get", "configmap", "while-s3-partitioned")
				return err
			})
			t.Logf("s3 caught up %s after its link came back", (time.Since(cut) - partitionFor).Round(time.Millisecond))
		})
		wantMembers(s1, "s1", "s2", "s3")
	})

	t.Run("a data dir of another cluster is refused", func(t *testing.T) {
		// A data dir whose CA is not the one the token pins: a server of
		// another cluster pointed at this one by mistake.
		foreign := filepath.Join(t.TempDir(), "data")
		tlsDir := filepath.Join(foreign, "server", "tls")
		os.MkdirAll(tlsDir, 0o700)
		os.WriteFile(filepath.Join(tlsDir, "server-ca.crt"), []byte("another cluster's CA\n"), 0o644)
		args := append([]string{"server", "--config", "", "--data-dir", foreign, "--node-ip", etcdNet.Subnet + ".254", "--disable-agent"}, join...)
		out, err := runWithTimeout(exec.Command(bin, args...), time.Minute)
		if err == nil || !strings.Contains(out, "belongs to another cluster") {
			t.Errorf("a server with another cluster's data dir: %v\n%s", err, tail(out))
		}
		if _, err := os.Stat(filepath.Join(foreign, "server", "db", "etcd")); err == nil {
			t.Errorf("the refused server created an etcd member")
		}
	})

	t.Run("a deleted server leaves the etcd cluster and joins again", func(t *testing.T) {
		via[s1].kubectl("delete", "node", "s3")
		wantMembers(s1, "s1", "s2")
		// The process ends as soon as its Node is gone (upstream
		// kube-proxy exits on that, as under k3s; a service manager
		// restarts it), or else when its etcd member is removed.
		select {
		case <-s3.Exited():
		case <-time.After(time.Minute):
			t.Fatalf("s3 still runs a minute after its node was deleted:\n%s", tail(s3.Log.String()))
		}
		via[s1].kubectl("create", "configmap", "while-s3-removed")
		c.start(s3)
		serving(s3)
		wantMembers(s1, "s1", "s2", "s3")
		if !strings.Contains(s3.Log.String(), "its data is kept aside and the server joins again") {
			t.Errorf("s3 did not say it set its old member aside")
		}
		if aside, _ := filepath.Glob(filepath.Join(s3.DataDir, "server", "db", "etcd-old-*", "member")); len(aside) != 1 {
			t.Errorf("s3's old etcd data was not kept aside: %v", aside)
		}
		if _, err := via[s3].kubectlErr("get", "configmap", "while-s3-removed"); err != nil {
			t.Errorf("s3, re-joined, lacks a write made while it was out: %v", err)
		}
	})
}

// TestSQLiteToEtcdMigration restarts a server that kept its data in SQLite
// with --cluster-init: every object moves into etcd, once, and the SQLite
// file is kept aside.
func TestSQLiteToEtcdMigration(t *testing.T) {
	bin := requirements(t)
	s := newServer(t, bin)
	s.start()
	const n = 200
	for i := range n {
		if _, err := s.kubectlErr("create", "configmap", fmt.Sprintf("before-migration-%d", i), fmt.Sprintf("--from-literal=i=%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	s.kubectl("create", "namespace", "moved")
	s.kubectl("create", "secret", "generic", "moved-secret", "-n", "moved", "--from-literal=password=s3cret")
	if code, _ := s.stop(); code != 0 {
		t.Fatalf("stop exit code %d", code)
	}

	s.args = append(s.args, "--cluster-init")
	s.start()
	if !strings.Contains(s.log.String(), "Moved the SQLite datastore into etcd") {
		t.Errorf("the server did not say it moved the SQLite data:\n%s", tail(s.log.String()))
	}
	out := s.kubectl("get", "configmaps", "-o", "name")
	for i := range n {
		if !strings.Contains(out, fmt.Sprintf("configmap/before-migration-%d\n", i)) {
			t.Fatalf("before-migration-%d is missing after the migration", i)
		}
	}
	if got := s.kubectl("get", "secret", "moved-secret", "-n", "moved", "-o", "jsonpath={.data.password}"); got != "czNjcmV0" {
		t.Errorf("moved-secret holds %q after the migration", got)
	}
	db := filepath.Join(s.dataDir, "server", "db")
	if _, err := os.Stat(filepath.Join(db, "state.db.migrated")); err != nil {
		t.Errorf("the SQLite file was not kept aside: %v", err)
	}
	if _, err := os.Stat(filepath.Join(db, "state.db")); err == nil {
		t.Errorf("state.db is still in place: the next start would migrate again")
	}
	// A restart, --cluster-init still given, does not migrate again and
	// keeps what was written since.
	s.kubectl("create", "configmap", "after-migration")
	if code, _ := s.stop(); code != 0 {
		t.Fatalf("stop exit code %d", code)
	}
	s.start()
	if strings.Contains(s.log.String(), "Moving the SQLite datastore") {
		t.Errorf("the second start migrated again")
	}
	s.kubectl("get", "configmap", "after-migration")
}
