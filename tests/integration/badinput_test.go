//go:build integration

package integration

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// runBinary runs regente to completion (bad input must make it exit on its
// own) and returns its exit code and combined output.
func runBinary(t *testing.T, bin string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("regente %v did not exit within 60s on bad input:\n%s", args, out.String())
	}
	return cmd.ProcessState.ExitCode(), out.String()
}

// treeDigest fingerprints every path, mode and content under dir.
func treeDigest(t *testing.T, dir string) string {
	t.Helper()
	h := sha256.New()
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			fmt.Fprintf(h, "%s err\n", p)
			return nil
		}
		info, _ := d.Info()
		fmt.Fprintf(h, "%s %v %d\n", p, info.Mode(), info.Size())
		if d.Type().IsRegular() {
			b, _ := os.ReadFile(p)
			h.Write(b)
		}
		return nil
	})
	return fmt.Sprintf("%x", h.Sum(nil))
}

func TestBadInput(t *testing.T) {
	bin := requirements(t)

	type tc struct {
		name string
		// setup prepares dir (the data dir's parent) and returns extra args.
		setup func(t *testing.T, dir string) []string
		want  []string // substrings of the output: the input and the fix
	}
	configWith := func(content string) func(t *testing.T, dir string) []string {
		return func(t *testing.T, dir string) []string {
			p := filepath.Join(dir, "bad.yaml")
			os.WriteFile(p, []byte(content), 0o600)
			return []string{"--config", p}
		}
	}
	args := func(a ...string) func(*testing.T, string) []string {
		return func(*testing.T, string) []string { return a }
	}
	cases := []tc{
		{"unknown flag", args("--no-such-flag"), []string{"--no-such-flag", "regente server --help"}},
		// An unknown key is a note, as in k3s (TestDay2VerbsReadConfig); a
		// known key with a value of the wrong shape still stops the start.
		{"list for a single-value config key", configWith("cluster-cidr: [10.42.0.0/16, 10.44.0.0/16]\n"), []string{"bad.yaml", "cluster-cidr", "single value"}},
		{"malformed yaml", configWith("tls-san: [a, b\n"), []string{"bad.yaml"}},
		{"invalid cidr", args("--cluster-cidr", "10.42.0.0/33"), []string{"cluster-cidr", "10.42.0.0/33"}},
		{"overlapping cidrs", args("--cluster-cidr", "10.0.0.0/8", "--service-cidr", "10.43.0.0/16"), []string{"overlap", "10.0.0.0/8", "10.43.0.0/16"}},
		{"unknown datastore scheme", args("--datastore-endpoint", "mongodb://u:secretpw@db/x"), []string{"mongodb", "postgres"}},
		{"cluster-init with an external datastore", args("--cluster-init", "--datastore-endpoint", "postgres://u:secretpw@db/x"), []string{"--cluster-init", "u:***@db/x", "only one"}},
		{"in-memory datastore with an external one", args("--datastore-in-memory", "--datastore-endpoint", "postgres://u:secretpw@db/x"), []string{"--datastore-in-memory", "u:***@db/x", "drop one"}},
		{"in-memory datastore saved too often", args("--datastore-in-memory", "--datastore-save-interval", "10ms"), []string{"--datastore-save-interval 10ms", "at least 1s"}},
		{"misspelled add-on", args("--disable", "trafik"), []string{`--disable "trafik"`, "coredns"}},
		{"unknown etcd setting", args("--etcd-arg", "no-such-etcd-key=1"), []string{"--etcd-arg", "no-such-etcd-key", "not an etcd setting"}},
		{"etcd setting regente owns", args("--etcd-arg", "listen-peer-urls=http://0.0.0.0:2380"), []string{"--etcd-arg", "regente sets listen-peer-urls itself"}},
		{"unknown kube-apiserver flag", args("--kube-apiserver-arg", "no-such-apiserver-flag=1"), []string{"no-such-apiserver-flag", "--kube-apiserver-arg"}},
		{"bad kube-controller-manager value", args("--kube-controller-manager-arg", "concurrent-deployment-syncs=many"), []string{"concurrent-deployment-syncs", "--kube-controller-manager-arg"}},
		{"loopback node ip", args("--node-ip", "127.0.0.1"), []string{"--node-ip 127.0.0.1", "--advertise-address"}},
		{"port in use", func(t *testing.T, dir string) []string {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
			return []string{"--https-listen-port", strconv.Itoa(l.Addr().(*net.TCPAddr).Port)}
		}, []string{"already in use", "--https-listen-port"}},
		{"state.db is not a database", func(t *testing.T, dir string) []string {
			db := filepath.Join(dir, "data", "server", "db", "state.db")
			os.MkdirAll(filepath.Dir(db), 0o700)
			os.WriteFile(db, []byte("precious user data that is not sqlite"), 0o600)
			return nil
		}, []string{"state.db", "not an SQLite database", "left untouched"}},
		{"unwritable data dir", func(t *testing.T, dir string) []string {
			ro := filepath.Join(dir, "ro")
			os.MkdirAll(ro, 0o755)
			if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", ro).CombinedOutput(); err != nil {
				t.Fatalf("mount read-only tmpfs: %v: %s", err, out)
			}
			t.Cleanup(func() { exec.Command("umount", ro).Run() })
			return []string{"--data-dir", filepath.Join(ro, "regente")}
		}, []string{"not writable", "--data-dir"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newServer(t, bin)
			dir := filepath.Dir(s.dataDir)
			extra := c.setup(t, dir)
			before := treeDigest(t, dir)
			code, out := runBinary(t, bin, append(s.args, extra...)...)
			if code == 0 {
				t.Fatalf("exit code 0 on bad input; output:\n%s", out)
			}
			for _, w := range c.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, tail(out))
				}
			}
			if strings.Contains(out, "secretpw") {
				t.Errorf("output leaks the datastore password:\n%s", out)
			}
			if after := treeDigest(t, dir); after != before {
				t.Errorf("bad input changed files under %s", dir)
			}
		})
	}
}
