//go:build integration

package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"regente.io/regente/tests/nscluster"
	"regente.io/regente/tests/s3server"
)

// TestRestoreOnAnotherMachine snapshots machine A (a server in its netns,
// with an agent running a pod) to S3, loses A, restores the snapshot on
// machine B (another netns, empty data dir) with the token, and re-points
// the agent: every object is there, the old admin credentials work, and
// the agent's pod kept running through it all.
func TestRestoreOnAnotherMachine(t *testing.T) {
	bin := requirements(t)
	const image = "regente.invalid/busybox:test"
	network := nscluster.Network{Bridge: mnNet.Bridge, Subnet: mnNet.Subnet, Names: []string{"srv", "a1", "srvb"}}
	c := newClusterWith(t, bin, map[string][]byte{"busybox.tar": busyboxImage(t, image)}, network, clusterOptions{spares: 1})
	a1, b := c.agents[0], c.spares[0]
	// The S3 server listens on the bridge, where B reaches it.
	store, err := s3server.Start(network.Subnet+".254", "AKMACHINES", "s3-secret-of-the-test", "backups")
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	s3Args := []string{"--etcd-s3", "--etcd-s3-endpoint", store.Endpoint, "--etcd-s3-insecure", "--etcd-s3-bucket", "backups",
		"--etcd-s3-access-key", store.AccessKey, "--etcd-s3-secret-key", store.SecretKey}

	c.kubectl("create", "configmap", "survivor", "--from-literal=k=v")
	c.kubectl("run", "steady", "--image="+image, "--image-pull-policy=Never", "--overrides", `{"spec":{"nodeName":"a1"}}`, "--", "sleep", "3600")
	c.kubectl("wait", "pod/steady", "--for=condition=Ready", "--timeout=60s")
	podBefore := c.kubectl("get", "pod", "steady", "-o", "jsonpath={.metadata.uid} {.status.containerStatuses[0].containerID}")

	out, err := exec.Command(bin, slices.Concat([]string{"etcd-snapshot", "save", "--data-dir", c.server.DataDir, "--name", "machine-a"}, s3Args)...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "uploaded machine-a") {
		t.Fatalf("etcd-snapshot save on A: %v\n%s", err, out)
	}
	token := strings.TrimSpace(string(mustRead(t, filepath.Join(c.server.DataDir, "server", "token"))))

	// Machine A is lost.
	c.stop(c.server)
	if err := os.RemoveAll(c.server.DataDir); err != nil {
		t.Fatal(err)
	}

	// Machine B restores from S3 into its empty data dir, then starts.
	b.Args = slices.Concat(c.serverArgs(b, "srvb"), []string{"--cluster-reset", "--cluster-reset-restore-path", "machine-a", "--token", token}, s3Args)
	began := time.Now()
	c.start(b)
	select {
	case <-b.Exited():
	case <-time.After(2 * time.Minute):
		t.Fatalf("the restore on B did not finish in 2 minutes:\n%s", tail(b.Log.String()))
	}
	if log := b.Log.String(); !strings.Contains(log, "start regente again without --cluster-reset") || !strings.Contains(log, "Restored the cluster's CAs and keys") {
		t.Fatalf("the restore on B:\n%s", tail(log))
	} else if strings.Contains(log, store.SecretKey) {
		t.Errorf("the restore logged the S3 secret key")
	}
	restoreTook := time.Since(began)
	b.Args = c.serverArgs(b, "srvb")
	c.start(b)
	// The admin kubeconfig of machine A works against B: same CA, same
	// admin certificate.
	old := string(mustRead(t, c.kubeconfig))
	if err := os.WriteFile(c.kubeconfig, []byte(strings.ReplaceAll(old, c.server.IP, b.IP)), 0o600); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Minute, "B serves the restored cluster", func() error {
		c.failIfExited(b)
		_, err := c.kubectlErr("get", "configmap", "survivor")
		return err
	})

	// The agent follows B once re-pointed; its pod was never stopped.
	c.stop(a1)
	a1.Args = c.agentArgs(a1, "--token", token)
	for i, arg := range a1.Args {
		a1.Args[i] = strings.ReplaceAll(arg, "https://"+c.server.IP+":6443", "https://"+b.IP+":6443")
	}
	c.start(a1)
	eventually(t, 3*time.Minute, "a1 and srvb Ready", func() error {
		c.failIfExited(b, a1)
		out, err := c.kubectlErr("get", "nodes", "-o", `jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status} {end}`)
		if err != nil || !strings.Contains(out, "a1=True") || !strings.Contains(out, "srvb=True") {
			return fmt.Errorf("nodes: %q (%v)", out, err)
		}
		return nil
	})
	eventually(t, time.Minute, "the agent's pod, unchanged, Running", func() error {
		out, err := c.kubectlErr("get", "pod", "steady", "-o", "jsonpath={.metadata.uid} {.status.containerStatuses[0].containerID} {.status.phase} {.status.containerStatuses[0].restartCount}")
		if err != nil || out != podBefore+" Running 0" {
			return fmt.Errorf("pod steady: %q, want %q (%v)", out, podBefore+" Running 0", err)
		}
		return nil
	})
	if out, err := c.kubectlErr("exec", "steady", "--", "echo", "reached"); err != nil || !strings.Contains(out, "reached") {
		t.Errorf("exec through B into the agent's pod: %q, %v", out, err)
	}
	t.Logf("restored on B in %s from S3; pod steady (uid and container %s) ran throughout", restoreTook.Round(time.Millisecond), podBefore)
}
