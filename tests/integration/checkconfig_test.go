//go:build integration

package integration

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// TestCheckConfig runs check-config on this machine, whose cgroups are v1
// (hybrid) and whose host tools hack/deps.sh installed: regente can run
// here, with a cgroup v1 warning that names the fix.
func TestCheckConfig(t *testing.T) {
	bin := requirements(t)
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		t.Skip("skipping: this host has cgroup v2; the test expects the cgroup v1 warning")
	}
	code, out := runBinary(t, bin, "check-config", "--data-dir", t.TempDir())
	if code != 0 {
		t.Fatalf("check-config exited %d, want 0 (regente runs here):\n%s", code, out)
	}
	for _, want := range []string{
		"WARN  cgroups", "cgroup v1 (hybrid", "failCgroupV1: false",
		"      fix: add systemd.unified_cgroup_hierarchy=1 cgroup_no_v1=all to the kernel command line",
		"OK    host tools", "iptables", "conntrack",
		"OK    port 6443/tcp", "OK    port 8472/udp",
		"regente can run on this host",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "FAIL") {
		t.Errorf("a check failed on this host:\n%s", out)
	}

	// JSON carries the same verdict.
	code, out = runBinary(t, bin, "check-config", "--output", "json", "--data-dir", t.TempDir())
	var report struct {
		CanRun bool
		Checks []struct{ Name, Status, Fix string }
	}
	if err := json.Unmarshal([]byte(out), &report); err != nil || code != 0 || !report.CanRun {
		t.Fatalf("json: exit %d, err %v:\n%s", code, err, out)
	}
	for _, c := range report.Checks {
		if c.Name == "cgroups" && (c.Status != "WARN" || !strings.Contains(c.Fix, "systemd.unified_cgroup_hierarchy=1")) {
			t.Errorf("json cgroups: %+v", c)
		}
	}

	// Bad flags exit 2 and name the flag.
	for _, args := range [][]string{{"--bogus"}, {"--role", "worker"}} {
		code, out = runBinary(t, bin, append([]string{"check-config"}, args...)...)
		if code != 2 || !strings.Contains(out, strings.TrimPrefix(args[len(args)-1], "--")) {
			t.Errorf("check-config %v: exit %d, want 2 naming the input:\n%s", args, code, out)
		}
	}
}
