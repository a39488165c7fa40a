//go:build integration

package integration

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"

	"regente.io/regente/pkg/join"
	"regente.io/regente/tests/nscluster"
)

// TestCertificateRotation rotates the server's leaf certificates, then
// its CAs, on a cluster of a server and an agent, and checks that the
// admin kubeconfig the server writes works, that the agent, which is not
// restarted, stays Ready and still serves logs and exec, that it rejoins
// with the token it was given before the CA changed, and that new nodes
// need the new token.
func TestCertificateRotation(t *testing.T) {
	bin := requirements(t)
	const image = "regente.invalid/busybox:test"
	network := nscluster.Network{Bridge: mnNet.Bridge, Subnet: mnNet.Subnet, Names: []string{"srv", "a1"}}
	c := newCluster(t, bin, map[string][]byte{"busybox.tar": busyboxImage(t, image)}, network)
	agent := c.agents[0]
	c.kubectl("run", "on-a1", "--image="+image, "--image-pull-policy=Never", "--overrides", `{"spec":{"nodeName":"a1"}}`,
		"--", "sh", "-c", "echo hello-from-a1; exec sleep 3600")
	c.kubectl("wait", "pod/on-a1", "--for=condition=Ready", "--timeout=90s")
	dataDir := c.server.DataDir
	cert := func(args ...string) (int, string) {
		return runBinary(t, bin, append([]string{"certificate"}, args...)...)
	}

	code, out := cert("check", "--data-dir", dataDir)
	if code != 0 {
		t.Fatalf("certificate check: exit %d\n%s", code, out)
	}
	expectContains(t, "certificate check", out, "FILE", "DAYS LEFT", "serving-kube-apiserver.crt", "client-admin.crt", "server-ca.crt", "ok")
	if code, out := cert("rotate", "--data-dir", dataDir); code == 0 || !strings.Contains(out, "stop it first") {
		t.Errorf("rotate on a running server: exit %d, want a refusal that says to stop it:\n%s", code, out)
	}

	serverKubeconfig := filepath.Join(c.server.Dir, "admin.yaml")
	adminBefore := kubeconfigCerts(t, serverKubeconfig)
	c.stop(c.server)
	if code, out := cert("rotate", "--data-dir", dataDir, "--service", "no-such-cert"); code == 0 || !strings.Contains(out, `"no-such-cert"`) {
		t.Errorf("rotate --service no-such-cert: exit %d, want a refusal naming it:\n%s", code, out)
	}
	if code, out := cert("rotate", "--data-dir", dataDir); code != 0 || !strings.Contains(out, "client-admin") {
		t.Fatalf("certificate rotate: exit %d\n%s", code, out)
	}
	restartAt := time.Now()
	c.start(c.server)
	c.refreshKubeconfig(serverKubeconfig, adminBefore)
	adminAfter := kubeconfigCerts(t, serverKubeconfig)
	if adminAfter.client.SerialNumber.Cmp(adminBefore.client.SerialNumber) == 0 {
		t.Error("the admin kubeconfig holds the same client certificate after rotate")
	}
	c.agentStaysReady(agent.Name, restartAt)

	// rotate-ca: the agent is not restarted, and keeps its old trust.
	oldToken, err := os.ReadFile(filepath.Join(dataDir, "server", "token"))
	if err != nil {
		t.Fatal(err)
	}
	oldKubeconfig := filepath.Join(t.TempDir(), "old-ca.kubeconfig")
	if err := os.WriteFile(oldKubeconfig, mustRead(t, c.kubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	c.stop(c.server)
	code, out = cert("rotate-ca", "--data-dir", dataDir)
	if code != 0 || !strings.Contains(out, "server-ca, client-ca, request-header-ca") {
		t.Fatalf("certificate rotate-ca: exit %d\n%s", code, out)
	}
	restartAt = time.Now()
	c.start(c.server)
	c.refreshKubeconfig(serverKubeconfig, adminAfter)
	rotated := kubeconfigCerts(t, serverKubeconfig)
	if rotated.cas[0].Equal(adminAfter.cas[0]) || len(rotated.cas) != 2 || !rotated.cas[1].Equal(adminAfter.cas[0]) {
		t.Errorf("the new kubeconfig should trust [new CA, old CA]; it has %d CAs", len(rotated.cas))
	}
	newToken := strings.TrimSpace(string(mustRead(t, filepath.Join(dataDir, "server", "token"))))
	if newToken == strings.TrimSpace(string(oldToken)) {
		t.Error("the token file still pins the old CA")
	}
	c.agentStaysReady(agent.Name, restartAt)
	old := &server{t: t, bin: bin, kubeconfig: oldKubeconfig}
	if _, err := old.kubectlErr("get", "--raw", "/readyz"); err != nil {
		t.Errorf("a kubeconfig from before the CA rotation (old CA, old client certificate) stopped working: %v", err)
	}
	// The API server reaches the kubelet with a certificate of the new
	// client CA; the kubelet, not restarted, trusts only the old one.
	eventually(t, 60*time.Second, "logs and exec on the agent after rotate-ca", func() error {
		if out, err := c.kubectlErr("logs", "on-a1"); err != nil || !strings.Contains(out, "hello-from-a1") {
			return fmt.Errorf("logs %q: %v", out, err)
		}
		if out, err := c.kubectlErr("exec", "on-a1", "--", "echo", "exec-ok"); err != nil || !strings.Contains(out, "exec-ok") {
			return fmt.Errorf("exec %q: %v", out, err)
		}
		return nil
	})

	// The agent restarted with the token it had before the rotation
	// trusts the new CA through the one it joined with.
	c.stop(agent)
	agent.Args = c.agentArgs(agent, "--token", strings.TrimSpace(string(oldToken)))
	restartAt = time.Now()
	c.start(agent)
	c.agentStaysReady(agent.Name, restartAt)
	expectContains(t, "agent log", agent.Log.String(), "trusted through the CA this node joined with")

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	newNode := func(token string) error {
		parsed, err := join.ParseToken(token)
		if err != nil {
			t.Fatal(err)
		}
		dir := shortTempDir(t)
		_, err = join.Join(ctx, join.ClientConfig{ServerURL: "https://" + c.server.IP + ":6443", Token: parsed, NodeName: "fresh",
			NodeIPs: []net.IP{net.ParseIP("10.99.0.99")}, PasswordFile: filepath.Join(dir, "pw"), TLSDir: filepath.Join(dir, "tls")})
		return err
	}
	if err := newNode(strings.TrimSpace(string(oldToken))); err == nil || !strings.Contains(err.Error(), "is not the one the token pins") {
		t.Errorf("a new node with the token from before rotate-ca: %v, want a refusal naming the CA hash", err)
	}
	if err := newNode(newToken); err != nil {
		t.Errorf("a new node with the new token: %v", err)
	}

	// The server also starts with --token holding the old CA's hash (a
	// config file written before the rotation).
	c.stop(c.server)
	c.server.Args = append(c.server.Args, "--token", strings.TrimSpace(string(oldToken)))
	c.start(c.server)
	c.refreshKubeconfig(serverKubeconfig, kubeconfigFile{})
}

// kubeconfigFile is what a kubeconfig trusts and presents.
type kubeconfigFile struct {
	cas    []*x509.Certificate
	client *x509.Certificate
}

func kubeconfigCerts(t *testing.T, path string) kubeconfigFile {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out kubeconfigFile
	for _, cluster := range cfg.Clusters {
		out.cas = parseCerts(t, cluster.CertificateAuthorityData)
	}
	for _, user := range cfg.AuthInfos {
		out.client = parseCerts(t, user.ClientCertificateData)[0]
	}
	return out
}

func parseCerts(t *testing.T, b []byte) []*x509.Certificate {
	t.Helper()
	var out []*x509.Certificate
	for {
		var block *pem.Block
		if block, b = pem.Decode(b); block == nil {
			break
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		t.Fatal("no certificate in the kubeconfig")
	}
	return out
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// refreshKubeconfig waits for the restarted server to write an admin
// kubeconfig other than before's, copies it pointed at the server's
// netns address to c.kubeconfig, and waits for /readyz through it.
func (c *mnCluster) refreshKubeconfig(serverKubeconfig string, before kubeconfigFile) {
	c.t.Helper()
	eventually(c.t, 2*time.Minute, "the restarted server serves with its new admin kubeconfig", func() error {
		c.failIfExited(c.server)
		b, err := os.ReadFile(serverKubeconfig)
		if err != nil {
			return err
		}
		if before.client != nil && kubeconfigCerts(c.t, serverKubeconfig).client.Equal(before.client) {
			return fmt.Errorf("%s not rewritten yet", serverKubeconfig)
		}
		rewritten := strings.ReplaceAll(string(b), "https://127.0.0.1:6443", "https://"+c.server.IP+":6443")
		if err := os.WriteFile(c.kubeconfig, []byte(rewritten), 0o600); err != nil {
			return err
		}
		_, err = c.kubectlErr("get", "--raw", "/readyz")
		return err
	})
}

// agentStaysReady waits until the node's kubelet has renewed its lease
// after since (it reaches the restarted server) and the node is Ready.
func (c *mnCluster) agentStaysReady(node string, since time.Time) {
	c.t.Helper()
	s := &server{t: c.t, bin: c.bin, kubeconfig: c.kubeconfig}
	eventually(c.t, 2*time.Minute, node+" renews its lease with the restarted server and is Ready", func() error {
		c.failIfExited(c.agents...)
		lease, err := s.client().CoordinationV1().Leases("kube-node-lease").Get(context.Background(), node, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if lease.Spec.RenewTime == nil || lease.Spec.RenewTime.Time.Before(since) {
			return fmt.Errorf("lease last renewed %v, before %v", lease.Spec.RenewTime, since)
		}
		out, err := exec.Command(c.bin, "kubectl", "--kubeconfig", c.kubeconfig, "get", "node", node, "-o",
			`jsonpath={.status.conditions[?(@.type=="Ready")].status}`).CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "True" {
			return fmt.Errorf("Ready=%q (%v)", out, err)
		}
		return nil
	})
}
