//go:build integration

package integration

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// installEnv runs install.sh scenarios in a throwaway root: overlays on
// /etc, /usr/local, /var/lib and /var/log whose upper dirs record every
// path the scripts create or delete, in namespaces of their own.
type installEnv struct {
	t     *testing.T
	bin   string
	repo  string
	state string
}

func newInstallEnv(t *testing.T) *installEnv {
	bin := requirements(t)
	for _, tool := range []string{"unshare", "shellcheck", "busybox"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is missing: run hack/deps.sh", tool)
		}
	}
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	e := &installEnv{t: t, bin: bin, repo: repo, state: t.TempDir()}
	// systemd and openrc cannot run here: these stand-ins record what the
	// scripts ask of them, which is what the scripts control.
	for _, fake := range []string{"systemctl", "rc-update", "openrc-run"} {
		e.write("fakebin/"+fake, 0o755, "#!/bin/sh\necho \""+fake+" $*\" >> "+e.state+"/init.log\n")
	}
	return e
}

func (e *installEnv) write(rel string, mode os.FileMode, content string) {
	e.t.Helper()
	path := filepath.Join(e.state, rel)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		e.t.Fatal(err)
	}
}

// run runs the bash script in the throwaway root and returns its output.
func (e *installEnv) run(script string) (string, error) {
	e.t.Helper()
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "--pid", "--fork", "--mount-proc", "--net", "--uts",
		"bash", filepath.Join(e.repo, "tests/integration/testdata/throwaway-root.sh"), e.state,
		"bash", "-euo", "pipefail", "-c", script)
	// The installer keeps every REGENTE_* variable it runs with: the
	// test run's own (REGENTE_INTEGRATION_REQUIRED in CI) must not be
	// among them.
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "REGENTE_") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, "REPO="+e.repo, "BIN="+e.bin, "STATE="+e.state)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (e *installEnv) mustRun(script string) string {
	e.t.Helper()
	out, err := e.run(script)
	if err != nil {
		e.t.Fatalf("scenario failed: %v\n%s", err, tail(out))
	}
	return out
}

func (e *installEnv) read(rel string) string {
	e.t.Helper()
	b, err := os.ReadFile(filepath.Join(e.state, rel))
	if err != nil {
		e.t.Fatal(err)
	}
	return string(b)
}

// leftovers lists what the upper dirs hold that the host does not: files,
// links, new dirs, and whiteouts (deletions of host files). Directories the
// overlay copied up only to hold a child are the host's own.
func (e *installEnv) leftovers() []string {
	var left []string
	upper := filepath.Join(e.state, "upper")
	filepath.Walk(upper, func(path string, fi os.FileInfo, err error) error {
		if err != nil || path == upper {
			return err
		}
		host := strings.TrimPrefix(path, upper)
		if strings.Count(host, "/") == 1 { // the overlaid dirs themselves
			return nil
		}
		if hfi, herr := os.Lstat(host); fi.IsDir() && herr == nil && hfi.IsDir() {
			return nil
		}
		left = append(left, fmt.Sprintf("%s (%s)", host, fi.Mode().Type()))
		return nil
	})
	return left
}

func expectContains(t *testing.T, what, text string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(text, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, text)
		}
	}
}

func TestInstallScriptSystemdServer(t *testing.T) {
	e := newInstallEnv(t)
	out := e.mustRun(`
mkdir -p /run/systemd/system   # as if systemd ran this machine
# A kubectl of the host's (some images carry one) would make install.sh
# rightly keep it; hide it in this mount namespace to test the link.
if k=$(command -v kubectl); then mount --bind /dev/null "$(readlink -f "$k")"; fi
cd "$REPO"
# Bad input first: nothing is installed, and the error says what to do.
if INSTALL_REGENTE_SKIP_DOWNLOAD=true sh install.sh 2>"$STATE/err-nobin"; then echo "no binary accepted"; exit 1; fi
if REGENTE_URL=https://10.0.0.1:6443 INSTALL_REGENTE_SKIP_DOWNLOAD=true sh install.sh 2>"$STATE/err-notoken"; then echo "agent without token accepted"; exit 1; fi
if REGENTE_URL=http://10.0.0.1:6443 REGENTE_TOKEN=x INSTALL_REGENTE_SKIP_DOWNLOAD=true sh install.sh 2>"$STATE/err-http"; then echo "http URL accepted"; exit 1; fi
# The upper dirs themselves (upper/etc, upper/usr/local, ...) are the
# overlays' own; only what is below them was written by the scripts.
(cd "$STATE/upper" && find etc usr/local var/lib var/log -mindepth 1) > "$STATE/after-bad-input.txt"

mkdir -p /usr/local/bin && cp "$BIN" /usr/local/bin/regente
INSTALL_REGENTE_SKIP_DOWNLOAD=true INSTALL_REGENTE_SKIP_START=true REGENTE_TOKEN="s3cret'quote" \
  sh install.sh server --disable servicelb --node-label "team=a b"
cp /etc/systemd/system/regente.service "$STATE/unit-1"
stat -c '%a %n' /etc/systemd/system/regente.service.env /usr/local/bin/regente-killall.sh /usr/local/bin/regente-uninstall.sh > "$STATE/modes"
for l in kubectl crictl ctr; do echo "$l -> $(readlink /usr/local/bin/$l)"; done > "$STATE/links"
cp /etc/systemd/system/regente.service.env "$STATE/envfile"
# The environment file must parse as shell does (systemd's rules match on this).
( set -a; . /etc/systemd/system/regente.service.env; printf '%s' "$REGENTE_TOKEN" > "$STATE/token-read-back" )
shellcheck -s sh /usr/local/bin/regente-killall.sh /usr/local/bin/regente-uninstall.sh
(cd "$STATE/upper" && find . -mindepth 2 | sort) > "$STATE/after-install.txt"
# Each link runs its tool, not regente's own dispatch.
{ /usr/local/bin/kubectl version --client; /usr/local/bin/crictl --version; /usr/local/bin/ctr --version; } > "$STATE/links-run" 2>&1

# Upgrade in place: a second run replaces the unit, keeps the data dir.
mkdir -p /var/lib/regente/server && echo keep > /var/lib/regente/server/marker
INSTALL_REGENTE_SKIP_DOWNLOAD=true INSTALL_REGENTE_EXEC="server --disable traefik --kubelet-arg=eviction-hard=imagefs.available<15%" sh install.sh
cp /etc/systemd/system/regente.service "$STATE/unit-2"
cat /var/lib/regente/server/marker > "$STATE/marker"
cp /etc/systemd/system/regente.service.env "$STATE/envfile-2"

# A second service (an agent named edge, with its own data dir): removing
# it must leave the first one's binary and data alone.
REGENTE_URL=https://10.0.0.1:6443 REGENTE_TOKEN=K10abc::server:def INSTALL_REGENTE_NAME=edge INSTALL_REGENTE_SKIP_DOWNLOAD=true \
  INSTALL_REGENTE_SKIP_START=true sh install.sh agent --data-dir /var/lib/regente-edge
grep -c '/var/lib/regente-edge' /usr/local/bin/regente-edge-uninstall.sh > "$STATE/edge-data-dir"
/usr/local/bin/regente-edge-uninstall.sh > "$STATE/uninstall-edge.out" 2>&1
test -x /usr/local/bin/regente && test -f /var/lib/regente/server/marker && echo kept > "$STATE/after-edge"

/usr/local/bin/regente-uninstall.sh > "$STATE/uninstall.out" 2>&1
`)
	t.Log(tail(out))

	expectContains(t, "error without a binary", e.read("err-nobin"), "INSTALL_REGENTE_SKIP_DOWNLOAD", "/usr/local/bin/regente")
	expectContains(t, "error for an agent without token", e.read("err-notoken"), "REGENTE_TOKEN")
	expectContains(t, "error for an http URL", e.read("err-http"), "REGENTE_URL", "https://")
	if left := strings.TrimSpace(e.read("after-bad-input.txt")); left != "" {
		t.Errorf("refused installs left files behind:\n%s", left)
	}

	unit := e.read("unit-1")
	expectContains(t, "systemd unit", unit, "Type=notify", "KillMode=process", "Delegate=yes", "LimitNOFILE=1048576",
		"EnvironmentFile=-/etc/systemd/system/regente.service.env",
		"ExecStart=/usr/local/bin/regente server '--disable' 'servicelb' '--node-label' 'team=a b'")
	expectContains(t, "file modes", e.read("modes"), "600 /etc/systemd/system/regente.service.env",
		"755 /usr/local/bin/regente-killall.sh", "755 /usr/local/bin/regente-uninstall.sh")
	expectContains(t, "symlinks", e.read("links"), "kubectl -> regente", "crictl -> regente", "ctr -> regente")
	expectContains(t, "what the links run", e.read("links-run"), "Client Version: v1.37.2", "crictl version", "ctr github.com/containerd/containerd")
	if got := e.read("token-read-back"); got != "s3cret'quote" {
		t.Errorf("the env file gives REGENTE_TOKEN=%q back, want %q:\n%s", got, "s3cret'quote", e.read("envfile"))
	}
	installed := e.read("after-install.txt")
	t.Logf("paths after install:\n%s", installed)
	for _, p := range []string{"usr/local/bin/regente-killall.sh", "usr/local/bin/regente-uninstall.sh", "usr/local/bin/kubectl",
		"etc/systemd/system/regente.service", "etc/systemd/system/regente.service.env"} {
		if !strings.Contains(installed, "./"+p+"\n") {
			t.Errorf("install did not create /%s", p)
		}
	}
	// systemd expands % and $ in ExecStart: they are doubled.
	expectContains(t, "upgraded unit", e.read("unit-2"), "ExecStart=/usr/local/bin/regente server '--disable' 'traefik' '--kubelet-arg=eviction-hard=imagefs.available<15%%'")
	expectContains(t, "env file after an upgrade without REGENTE_TOKEN", e.read("envfile-2"), "REGENTE_TOKEN=")
	if strings.TrimSpace(e.read("edge-data-dir")) == "0" {
		t.Errorf("the edge uninstall script does not know its --data-dir /var/lib/regente-edge")
	}
	if e.read("after-edge") != "kept\n" {
		t.Errorf("uninstalling the second service removed the first one's binary or data:\n%s", tail(e.read("uninstall-edge.out")))
	}
	expectContains(t, "edge uninstall", e.read("uninstall-edge.out"), "Other regente services remain")
	if e.read("marker") != "keep\n" {
		t.Errorf("re-running the installer lost the data dir")
	}
	init := e.read("init.log")
	expectContains(t, "systemctl calls", init, "systemctl daemon-reload", "systemctl enable regente", "systemctl restart regente",
		"systemctl stop regente.service", "systemctl disable regente")
	if strings.Count(init, "systemctl restart") != 1 {
		t.Errorf("INSTALL_REGENTE_SKIP_START started the service, or the upgrade did not restart it:\n%s", init)
	}
	if left := e.leftovers(); len(left) > 0 {
		t.Errorf("uninstall left behind:\n%s\nuninstall said:\n%s", strings.Join(left, "\n"), tail(e.read("uninstall.out")))
	}
}

func TestInstallScriptOpenrcAgentDownload(t *testing.T) {
	e := newInstallEnv(t)
	// The release layout install.sh downloads from, served by busybox
	// httpd inside the test's network namespace.
	binary, err := os.ReadFile(e.bin)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(binary)
	if err := os.MkdirAll(filepath.Join(e.state, "www/download/v9.9.9"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(e.bin, filepath.Join(e.state, "www/download/v9.9.9/regente")); err != nil {
		if err := os.WriteFile(filepath.Join(e.state, "www/download/v9.9.9/regente"), binary, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	e.write("www/download/v9.9.9/sha256sum-amd64.txt", 0o644, hex.EncodeToString(sum[:])+"  regente\n")
	// A release whose checksum does not match its binary.
	if err := os.MkdirAll(filepath.Join(e.state, "www/download/v9.9.8"), 0o755); err != nil {
		t.Fatal(err)
	}
	e.write("www/download/v9.9.8/regente", 0o755, "#!/bin/sh\necho tampered\n")
	e.write("www/download/v9.9.8/sha256sum-amd64.txt", 0o644, hex.EncodeToString(sum[:])+"  regente\n")

	out := e.mustRun(`
cd "$REPO"
busybox httpd -p 127.0.0.1:8099 -h "$STATE/www"
export INSTALL_REGENTE_DOWNLOAD_URL=http://127.0.0.1:8099
export REGENTE_URL=https://10.0.0.1:6443 REGENTE_TOKEN=K10abc::server:def INSTALL_REGENTE_NAME=edge
INSTALL_REGENTE_VERSION=v9.9.9 INSTALL_REGENTE_SKIP_START=true INSTALL_REGENTE_SYMLINK=skip sh install.sh
cmp "$BIN" /usr/local/bin/regente
cp /etc/init.d/regente-edge "$STATE/initscript"
stat -c '%a %n' /etc/regente/regente-edge.env > "$STATE/modes"
cp /etc/regente/regente-edge.env "$STATE/envfile"
ls /usr/local/bin > "$STATE/bindir"
if INSTALL_REGENTE_VERSION=v9.9.8 sh install.sh 2>"$STATE/err-checksum"; then echo "tampered binary accepted"; exit 1; fi
cmp "$BIN" /usr/local/bin/regente
shellcheck -s sh /usr/local/bin/regente-killall.sh /usr/local/bin/regente-edge-uninstall.sh
/usr/local/bin/regente-edge-uninstall.sh > "$STATE/uninstall.out" 2>&1
`)
	t.Log(tail(out))
	expectContains(t, "openrc script", e.read("initscript"), "#!/sbin/openrc-run", "supervisor=supervise-daemon",
		`command="/usr/local/bin/regente"`, `command_args="agent"`, ". /etc/regente/regente-edge.env")
	expectContains(t, "env file", e.read("envfile"), "REGENTE_URL='https://10.0.0.1:6443'", "REGENTE_TOKEN='K10abc::server:def'")
	expectContains(t, "env file mode", e.read("modes"), "600 /etc/regente/regente-edge.env")
	expectContains(t, "checksum error", e.read("err-checksum"), "checksum", "nothing was installed")
	if bins := strings.Fields(e.read("bindir")); slices.Contains(bins, "kubectl") {
		t.Errorf("INSTALL_REGENTE_SYMLINK=skip still linked kubectl: %v", bins)
	}
	expectContains(t, "rc-update calls", e.read("init.log"), "rc-update add regente-edge default", "rc-update delete regente-edge default")
	if left := e.leftovers(); len(left) > 0 {
		t.Errorf("uninstall left behind:\n%s\nuninstall said:\n%s", strings.Join(left, "\n"), tail(e.read("uninstall.out")))
	}
}

// TestShellcheck holds every shell script of the repository to shellcheck.
func TestShellcheck(t *testing.T) {
	requirements(t)
	if _, err := exec.LookPath("shellcheck"); err != nil {
		t.Fatal("shellcheck is missing: run hack/deps.sh")
	}
	out, err := exec.Command("git", "-C", "../..", "ls-files").Output()
	if err != nil {
		t.Skipf("not a git checkout (%v): the scripts are checked where the tree is", err)
	}
	var scripts []string
	for _, f := range strings.Fields(string(out)) {
		b, err := os.ReadFile(filepath.Join("../..", f))
		if err != nil {
			continue
		}
		if strings.HasSuffix(f, ".sh") || strings.HasPrefix(string(b), "#!/bin/sh") || strings.HasPrefix(string(b), "#!/usr/bin/env bash") {
			scripts = append(scripts, f)
		}
	}
	if !slices.Contains(scripts, "install.sh") {
		t.Fatalf("install.sh not among the scripts found: %v", scripts)
	}
	cmd := exec.Command("shellcheck", append([]string{"-x"}, scripts...)...)
	cmd.Dir = "../.."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("shellcheck %v: %v\n%s", scripts, err, out)
	}
	t.Logf("shellcheck passed on %d scripts: %v", len(scripts), scripts)
}
