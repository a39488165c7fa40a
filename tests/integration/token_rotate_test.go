//go:build integration

package integration

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"regente.io/regente/pkg/join"
	"regente.io/regente/pkg/killall"
)

// agentProcess is a `regente agent` on this host, joined to a server that
// runs no node of its own, so that the host has one kubelet.
type agentProcess struct {
	cmd    *exec.Cmd
	log    *syncBuffer
	exited chan struct{}
}

func startAgent(t *testing.T, bin, serverURL, tokenFile, nodeName string) *agentProcess {
	t.Helper()
	dir := t.TempDir()
	dataDir, runDir := filepath.Join(dir, "data"), filepath.Join(dir, "run")
	a := &agentProcess{log: &syncBuffer{}, exited: make(chan struct{})}
	a.cmd = exec.Command(bin, "agent", "--config", "", "--data-dir", dataDir, "--run-dir", runDir,
		"--server", serverURL, "--token-file", tokenFile, "--node-name", nodeName,
		"--lb-server-port", strconv.Itoa(freePort(t)))
	a.cmd.Stdout, a.cmd.Stderr = a.log, a.log
	a.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := a.cmd.Start(); err != nil {
		t.Fatalf("start regente agent: %v", err)
	}
	go func() { a.cmd.Wait(); close(a.exited) }()
	t.Cleanup(func() {
		_ = a.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-a.exited:
		case <-time.After(30 * time.Second):
			t.Errorf("regente agent did not exit 30s after SIGTERM:\n%s", tail(a.log.String()))
			a.cmd.Process.Kill()
			<-a.exited
		}
		// Shims and containers outlive regente by design: end them.
		killall.Node(dataDir, runDir)
	})
	return a
}

func (a *agentProcess) failIfExited(t *testing.T) {
	t.Helper()
	select {
	case <-a.exited:
		t.Fatalf("regente agent exited (%v):\n%s", a.cmd.ProcessState, tail(a.log.String()))
	default:
	}
}

// TestTokenRotate rotates the server token under a running agent: joins
// with the old token are refused with a message that says why, joins with
// the new one work, the token file holds the new token (0600), a restart
// with the old --token is refused, and the agent that joined before stays
// Ready across a server restart.
func TestTokenRotate(t *testing.T) {
	bin := requirements(t)
	s := newServer(t, bin, "--bind-address=0.0.0.0")
	s.start()
	serverURL := fmt.Sprintf("https://127.0.0.1:%d", s.port)
	tokenFile := filepath.Join(s.dataDir, "server", "token")
	oldBytes, err := os.ReadFile(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	oldToken := strings.TrimSpace(string(oldBytes))
	// The agent keeps its own copy, as a real one would.
	agentToken := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(agentToken, oldBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	const node = "rotate-agent"
	agent := startAgent(t, bin, serverURL, agentToken, node)
	nodeReady := func() error {
		agent.failIfExited(t)
		out, err := s.kubectlErr("get", "node", node, "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`)
		if err != nil {
			return err
		}
		if out != "True" {
			return fmt.Errorf("Ready=%q", out)
		}
		return nil
	}
	eventually(t, 120*time.Second, "the agent's node Ready", nodeReady)

	cmd := exec.Command(bin, "token", "rotate", "--data-dir", s.dataDir, "--kubeconfig", s.kubeconfig)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("regente token rotate: %v\n%s%s", err, out, stderr.String())
	}
	newToken := strings.TrimSpace(string(out))
	oldParsed, _ := join.ParseToken(oldToken)
	newParsed, err := join.ParseToken(newToken)
	if err != nil || newParsed.Kind != join.KindServer || newParsed.CAHash != oldParsed.CAHash || newParsed.Secret == oldParsed.Secret {
		t.Fatalf("rotate printed %q (%v), want a new server token pinning the same CA as %q", newToken, err, oldToken)
	}
	if b, _ := os.ReadFile(tokenFile); strings.TrimSpace(string(b)) != newToken {
		t.Errorf("the token file holds %q, want the printed %q", b, newToken)
	}
	checkMode(t, tokenFile, 0o600)
	// k3s users read the join token from server/node-token.
	if b, _ := os.ReadFile(filepath.Join(s.dataDir, "server", "node-token")); strings.TrimSpace(string(b)) != newToken {
		t.Errorf("server/node-token holds %q, want the new token %q", b, newToken)
	}
	if !strings.Contains(stderr.String(), "Joins with the old token are refused") {
		t.Errorf("rotate did not tell what happens next:\n%s", stderr.String())
	}

	t.Run("join with the old token is refused, naming the rotation", func(t *testing.T) {
		dir := shortTempDir(t)
		code, out := runBinary(t, bin, "agent", "--config", "", "--data-dir", filepath.Join(dir, "data"), "--run-dir", filepath.Join(dir, "run"),
			"--server", serverURL, "--token", oldToken, "--node-name", "rotate-late", "--lb-server-port", strconv.Itoa(freePort(t)))
		if code == 0 || !strings.Contains(out, "replaced by `regente token rotate`") {
			t.Errorf("exit code %d, want non-zero naming the rotation:\n%s", code, tail(out))
		}
	})
	t.Run("rotating again with the old token is refused", func(t *testing.T) {
		code, out := runBinary(t, bin, "token", "rotate", "--data-dir", s.dataDir, "--kubeconfig", s.kubeconfig, "--token", oldToken)
		if code == 0 || !strings.Contains(out, "already replaced") {
			t.Errorf("exit code %d:\n%s", code, out)
		}
	})
	t.Run("join with the new token works", func(t *testing.T) {
		dir := t.TempDir()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		res, err := join.Join(ctx, join.ClientConfig{ServerURL: serverURL, Token: newParsed, NodeName: "rotate-new",
			NodeIPs: []net.IP{net.IPv4(127, 0, 0, 1)}, PasswordFile: filepath.Join(dir, "node-password"), TLSDir: filepath.Join(dir, "tls")})
		if err != nil || res.PKI == nil {
			t.Fatalf("join with the new token: %v", err)
		}
	})

	if code, took := s.stop(); code != 0 {
		t.Fatalf("stop exit code %d after %s:\n%s", code, took, tail(s.log.String()))
	}
	t.Run("restart with the old --token is refused", func(t *testing.T) {
		code, out := runBinary(t, bin, append(append([]string(nil), s.args...), "--token", oldToken)...)
		if code == 0 || !strings.Contains(out, "`regente token rotate` replaced") || !strings.Contains(out, tokenFile) {
			t.Errorf("exit code %d, want non-zero naming the rotation and %s:\n%s", code, tokenFile, tail(out))
		}
		if b, _ := os.ReadFile(tokenFile); strings.TrimSpace(string(b)) != newToken {
			t.Errorf("the refused start rewrote the token file: %q", b)
		}
	})

	restarted := time.Now()
	s.start()
	if b, _ := os.ReadFile(tokenFile); strings.TrimSpace(string(b)) != newToken {
		t.Errorf("after the restart the token file holds %q, want %q", b, newToken)
	}
	// The node's Ready status alone could be a leftover from before the
	// restart; a lease renewed since shows the agent still gets through.
	eventually(t, 90*time.Second, "the agent renews its lease with the restarted server", func() error {
		agent.failIfExited(t)
		out, err := s.kubectlErr("get", "lease", "-n", "kube-node-lease", node, "-o", "jsonpath={.spec.renewTime}")
		if err != nil {
			return err
		}
		renewed, err := time.Parse(time.RFC3339Nano, out)
		if err != nil {
			return fmt.Errorf("renewTime %q: %v", out, err)
		}
		if !renewed.After(restarted) {
			return fmt.Errorf("last renewed %s, before the restart at %s", renewed, restarted)
		}
		return nil
	})
	if err := nodeReady(); err != nil {
		t.Errorf("after the server restart: %v", err)
	}
}
