//go:build integration

package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"regente.io/regente/pkg/killall"
	"regente.io/regente/tests/nscluster"
)

// TestDay2VerbsReadConfig starts a node whose data dir and run dir are set
// only in its config file, then runs every day-2 verb with nothing but
// REGENTE_CONFIG naming that file (as /etc/regente/config.yaml would):
// each finds the node's state there, none looks in /var/lib/regente or
// /run/regente.
func TestDay2VerbsReadConfig(t *testing.T) {
	bin := requirements(t)
	const image = "regente.invalid/busybox:day2"
	s := newNode(t, bin, nil)
	runDir := filepath.Join(filepath.Dir(s.dataDir), "run")
	t.Cleanup(func() { killall.Node(s.dataDir, runDir) })
	if err := os.MkdirAll(filepath.Join(s.dataDir, "agent", "images"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.dataDir, "agent", "images", "busybox.tar"), busyboxImage(t, image), 0o600); err != nil {
		t.Fatal(err)
	}
	// newProcess passes --config (an empty file) and --data-dir: the dirs
	// move into that file, beside a key regente does not know and the keys
	// a config file written for k3s holds, which start regente unchanged.
	cfgFile := s.args[slices.Index(s.args, "--config")+1]
	i := slices.Index(s.args, "--data-dir")
	s.args = slices.Delete(s.args, i, i+2)
	// A --kubelet-arg flag would replace the file's list: the test nodes'
	// eviction thresholds move into it.
	s.args = slices.DeleteFunc(s.args, func(a string) bool { return a == nscluster.KubeletEvictionArg })
	eviction := strings.TrimPrefix(nscluster.KubeletEvictionArg, "--kubelet-arg=")
	k3sKeys := "disable: traefik\nwrite-kubeconfig-mode: 644\ntls-san:\n  - regente.example\nnode-label:\n  - from=k3s-config\nkubelet-arg:\n  - max-pods=120\n  - \"" + eviction + "\"\n"
	if err := os.WriteFile(cfgFile, []byte("data-dir: "+s.dataDir+"\nrun-dir: "+runDir+"\nresolv-conf: /etc/resolv.conf\n"+k3sKeys), 0o600); err != nil {
		t.Fatal(err)
	}
	s.start()
	s.waitNodeReady(t)
	if log := s.log.String(); !strings.Contains(log, `unknown key \"resolv-conf\" ignored`) {
		t.Errorf("no note on the unknown config key:\n%s", tail(log))
	}
	checkMode(t, s.kubeconfig, 0o644)
	if out := s.kubectl("get", "nodes", "-l", "from=k3s-config", "-o", "jsonpath={.items[*].status.capacity.pods}"); out != "120" {
		t.Errorf("the node's label and kubelet-arg from the k3s config: pods capacity of labeled nodes %q, want 120", out)
	}
	if _, err := os.Stat(filepath.Join(runDir, "containerd", "containerd.sock")); err != nil {
		t.Fatalf("containerd is not in the configured run dir: %v", err)
	}

	// The verbs see REGENTE_CONFIG and nothing else of this test run's.
	env := []string{"REGENTE_CONFIG=" + cfgFile}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "REGENTE_") && !strings.HasPrefix(kv, "CONTAINER") {
			env = append(env, kv)
		}
	}
	verb := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = env
		out, err := runWithTimeout(cmd, 2*time.Minute)
		if err != nil {
			t.Fatalf("regente %s: %v:\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	wantIn := func(what, out string, want ...string) {
		t.Helper()
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: no %q in:\n%s", what, w, out)
			}
		}
	}

	wantIn("etcd-snapshot save", verb("etcd-snapshot", "save", "--name", "day2"), filepath.Join(s.dataDir, "server", "db", "snapshots", "day2.db"))
	wantIn("etcd-snapshot ls", verb("etcd-snapshot", "ls"), "day2")
	wantIn("certificate check", verb("certificate", "check"), "client-admin", "system:node:")
	wantIn("secrets-encrypt status", verb("secrets-encrypt", "status"), "API Server: uses the current configuration")
	// rotate reads the current token from <data-dir>/server/token.
	newToken, _, _ := strings.Cut(verb("token", "rotate", "--kubeconfig", s.kubeconfig), "\n") // then advice, on stderr
	if b, err := os.ReadFile(filepath.Join(s.dataDir, "server", "token")); err != nil || strings.TrimSpace(string(b)) != newToken {
		t.Errorf("token rotate printed %q; the server's token file holds %q (%v)", newToken, b, err)
	}
	wantIn("ctr", verb("ctr", "images", "ls", "-q"), image)
	wantIn("crictl", verb("crictl", "images"), "regente.invalid/busybox")

	if code, _ := s.stop(); code != 0 {
		t.Fatalf("stop exit code %d", code)
	}
	// check-config's verdict depends on the host; where it looks does not.
	cmd := exec.Command(bin, "check-config")
	cmd.Env = env
	out, _ := runWithTimeout(cmd, 2*time.Minute)
	wantIn("check-config", out, "(data dir "+s.dataDir+")")
	verb("killall")
	if _, err := os.Stat(filepath.Join(runDir, "containerd")); !os.IsNotExist(err) {
		t.Errorf("killall left the configured run dir's containerd state: %v", err)
	}
}
