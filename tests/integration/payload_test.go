//go:build integration

package integration

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/klog/v2"

	"regente.io/regente/pkg/payload"
)

// TestPayloadRunsAContainer unpacks the archive hack/payload.sh built, the
// way regente will at first start, and runs a real container with the
// unpacked runc: static linking, seccomp and this host's cgroups all work.
func TestPayloadRunsAContainer(t *testing.T) {
	bin := requirements(t)
	archivePath := filepath.Join(filepath.Dir(bin), "..", "pkg", "payload", "embedded", "payload.tar.zst")
	archive, err := os.ReadFile(archivePath)
	if err != nil {
		t.Fatalf("read payload (run hack/payload.sh): %v", err)
	}
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		t.Fatalf("busybox not found: install Debian's busybox-static")
	}
	dir := t.TempDir()
	payloadDir, err := payload.Ensure(klog.Background(), payload.NewArchive(archive), filepath.Join(dir, "data"))
	if err != nil {
		t.Fatal(err)
	}
	binDir := filepath.Join(payloadDir, "bin")
	if _, err := os.Stat(filepath.Join(payloadDir, "images", "pause.tar")); err != nil {
		t.Errorf("payload lacks the pause image: %v", err)
	}
	for _, name := range []string{"runc", "containerd", "containerd-shim-runc-v2", "crictl", "bridge", "host-local", "loopback", "portmap", "bandwidth", "firewall"} {
		if _, err := os.Stat(filepath.Join(binDir, name)); err != nil {
			t.Errorf("payload lacks %s: %v", name, err)
		}
	}
	runc := filepath.Join(binDir, "runc")

	bundle := filepath.Join(dir, "bundle")
	rootfs := filepath.Join(bundle, "rootfs", "bin")
	if err := os.MkdirAll(rootfs, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", busybox, filepath.Join(rootfs, "busybox")).CombinedOutput(); err != nil {
		t.Fatalf("copy busybox: %v: %s", err, out)
	}
	if out, err := exec.Command(runc, "spec", "--bundle", bundle).CombinedOutput(); err != nil {
		t.Fatalf("runc spec: %v: %s", err, out)
	}
	specPath := filepath.Join(bundle, "config.json")
	var spec map[string]any
	raw, _ := os.ReadFile(specPath)
	if err := json.Unmarshal(raw, &spec); err != nil {
		t.Fatal(err)
	}
	process := spec["process"].(map[string]any)
	process["terminal"] = false
	process["args"] = []string{"/bin/busybox", "sh", "-c",
		"echo hello-from-runc; /bin/busybox grep Seccomp: /proc/self/status; /bin/busybox mkdir /tmp/denied || echo mkdir-denied"}
	// A profile that denies mkdir proves seccomp is compiled in and enforced.
	spec["linux"].(map[string]any)["seccomp"] = map[string]any{
		"defaultAction": "SCMP_ACT_ALLOW",
		"architectures": []string{"SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"},
		"syscalls":      []map[string]any{{"names": []string{"mkdir", "mkdirat"}, "action": "SCMP_ACT_ERRNO"}},
	}
	raw, _ = json.Marshal(spec)
	os.WriteFile(specPath, raw, 0o644)

	cmd := exec.Command(runc, "--root", filepath.Join(dir, "runc-state"), "run", "--bundle", bundle, "payload-test")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("runc run: %v: %s", err, out)
	}
	if !strings.Contains(string(out), "hello-from-runc") {
		t.Fatalf("container output: %s", out)
	}
	if !strings.Contains(string(out), "Seccomp:\t2") || !strings.Contains(string(out), "mkdir-denied") {
		t.Errorf("container not under the seccomp filter: %s", out)
	}
}
