//go:build integration

package integration

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"regente.io/regente/tests/nscluster"
)

// requirements skips (or, in CI, fails) when the tests cannot run here.
func requirements(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("REGENTE_BIN")
	if bin == "" {
		bin, _ = filepath.Abs("../../bin/regente")
	}
	var missing string
	switch {
	case os.Geteuid() != 0:
		missing = "integration tests need root"
	default:
		if _, err := os.Stat(bin); err != nil {
			missing = fmt.Sprintf("no regente binary at %s: run `make build` first or set REGENTE_BIN", bin)
		}
	}
	if missing != "" {
		if os.Getenv("REGENTE_INTEGRATION_REQUIRED") == "1" {
			t.Fatalf("cannot run: %s", missing)
		}
		t.Skipf("skipping: %s", missing)
	}
	return bin
}

// server is one running `regente server` process.
type server struct {
	t          *testing.T
	bin        string
	dataDir    string
	port       int
	kubeconfig string
	args       []string
	wrap       []string // argv before bin, e.g. a move into a cgroup; the process execs into regente
	cmd        *exec.Cmd
	log        *syncBuffer
	exited     chan struct{}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// newServer prepares a control-plane-only server (--disable-agent) on a
// fresh data dir with an empty config file, so the machine's /etc/regente
// never leaks into a test.
// newServer prepares a control plane alone. With no node, metrics-server
// cannot run and its aggregated API stays unavailable, which upstream
// discovery (kubectl api-resources) reports as an error: TestAddons covers
// it on a node instead.
func newServer(t *testing.T, bin string, extra ...string) *server {
	return newProcess(t, bin, append([]string{"--disable-agent", "--disable=metrics-server"}, extra...)...)
}

func newProcess(t *testing.T, bin string, extra ...string) *server {
	t.Helper()
	dir := shortTempDir(t)
	s := &server{t: t, bin: bin, dataDir: filepath.Join(dir, "data"), port: freePort(t),
		kubeconfig: filepath.Join(dir, "kubeconfig.yaml")}
	cfgFile := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s.args = append([]string{"server",
		"--config", cfgFile,
		"--data-dir", s.dataDir,
		"--https-listen-port", strconv.Itoa(s.port),
		"--bind-address", "127.0.0.1",
		"--write-kubeconfig", s.kubeconfig,
		nscluster.KubeletEvictionArg,
	}, extra...)
	return s
}

// start launches the process and waits for /readyz through the admin
// kubeconfig it writes.
func (s *server) start() {
	s.t.Helper()
	s.log = &syncBuffer{}
	argv := append(append(slices.Clone(s.wrap), s.bin), s.args...)
	s.cmd = exec.Command(argv[0], argv[1:]...)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("start regente: %v", err)
	}
	s.exited = make(chan struct{})
	go func() { s.cmd.Wait(); close(s.exited) }()
	s.t.Cleanup(s.kill)
	deadline := time.Now().Add(90 * time.Second)
	for {
		select {
		case <-s.exited:
			s.t.Fatalf("regente exited during start (%v):\n%s", s.cmd.ProcessState, tail(s.log.String()))
		default:
		}
		if out, err := s.kubectlErr("get", "--raw", "/readyz"); err == nil && strings.TrimSpace(out) == "ok" {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("regente not ready after 90s:\n%s", tail(s.log.String()))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// stop sends SIGTERM and returns the exit code and how long it took.
func (s *server) stop() (int, time.Duration) {
	s.t.Helper()
	begin := time.Now()
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		s.t.Fatalf("regente did not exit 30s after SIGTERM:\n%s", tail(s.log.String()))
	}
	return s.cmd.ProcessState.ExitCode(), time.Since(begin)
}

func (s *server) kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.exited:
	default:
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

func (s *server) kubectlErr(args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(filepath.Dir(s.bin), "kubectl"), args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+s.kubeconfig)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if err != nil {
		return out.String() + errOut.String(), fmt.Errorf("kubectl %s: %v: %s", strings.Join(args, " "), err, errOut.String())
	}
	return out.String(), nil
}

func (s *server) kubectl(args ...string) string {
	s.t.Helper()
	out, err := s.kubectlErr(args...)
	if err != nil {
		s.t.Fatal(err)
	}
	return out
}

// apply pipes a manifest into kubectl apply.
func (s *server) apply(manifest string) {
	s.t.Helper()
	cmd := exec.Command(filepath.Join(filepath.Dir(s.bin), "kubectl"), "apply", "-f", "-")
	cmd.Env = append(os.Environ(), "KUBECONFIG="+s.kubeconfig)
	cmd.Stdin = strings.NewReader(manifest)
	if out, err := cmd.CombinedOutput(); err != nil {
		s.t.Fatalf("kubectl apply: %v: %s", err, out)
	}
}

func (s *server) restConfig() *rest.Config {
	s.t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", s.kubeconfig)
	if err != nil {
		s.t.Fatal(err)
	}
	return cfg
}

func (s *server) client() *kubernetes.Clientset {
	s.t.Helper()
	return kubernetes.NewForConfigOrDie(s.restConfig())
}

// rawGet sends a GET with an optional bearer token, trusting the cluster CA.
func (s *server) rawGet(path, token string) int {
	s.t.Helper()
	cfg := rest.AnonymousClientConfig(s.restConfig())
	cfg.BearerToken = token
	transport, err := rest.TransportFor(cfg)
	if err != nil {
		s.t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, cfg.Host+path, nil)
	resp, err := (&http.Client{Transport: transport, Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		s.t.Fatalf("GET %s: %v", path, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func tail(s string) string {
	lines := strings.Split(s, "\n")
	if len(lines) > 60 {
		lines = lines[len(lines)-60:]
	}
	return strings.Join(lines, "\n")
}

// eventually retries check until it returns nil or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still failing after %s: %v", what, timeout, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// shortTempDir is t.TempDir with a short name: t.TempDir names the dir
// after the (sub)test, and the kubelet's sockets below a data dir must
// fit the 107-byte limit of unix socket paths.
func shortTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "rgt-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}
