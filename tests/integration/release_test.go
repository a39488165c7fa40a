//go:build integration

package integration

import (
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestReleaseCrossBuilds runs `make release` for the architectures in
// REGENTE_RELEASE_ARCHES (arm64 and armv7 when unset; amd64 is the binary
// every other test runs) and checks what install.sh relies on:
// static ELF files for the right machine, checksums that match, and a
// binary that starts on its machine (here under qemu-user) far enough to
// print its version and check the host.
//
// hack/test.sh starts those builds in the background at the lowest CPU
// priority before the other suites and names their log in
// REGENTE_RELEASE_LOG: the test then waits for them, after every other
// test of the package (it is the only parallel one), instead of building.
func TestReleaseCrossBuilds(t *testing.T) {
	requirements(t)
	if testing.Short() {
		t.Skip("cross builds take minutes")
	}
	t.Parallel()
	arches := strings.Fields(os.Getenv("REGENTE_RELEASE_ARCHES"))
	if len(arches) == 0 {
		arches = []string{"arm64", "armv7"}
	}
	repo, _ := filepath.Abs("../..")
	start := time.Now()
	if log := os.Getenv("REGENTE_RELEASE_LOG"); log != "" {
		waitRelease(t, log)
	} else {
		cmd := exec.Command("hack/release.sh")
		cmd.Dir = repo
		cmd.Env = append(os.Environ(), "ARCHES="+strings.Join(arches, " "))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("hack/release.sh: %v\n%s", err, tail(string(out)))
		}
	}
	t.Logf("release builds for %s: %s here", strings.Join(arches, " and "), time.Since(start).Round(time.Second))

	for _, tc := range []struct {
		arch, file, qemu string
		machine          elf.Machine
		class            elf.Class
	}{
		{"arm64", "regente-arm64", "qemu-aarch64-static", elf.EM_AARCH64, elf.ELFCLASS64},
		{"armv7", "regente-armv7", "qemu-arm-static", elf.EM_ARM, elf.ELFCLASS32},
	} {
		t.Run(tc.arch, func(t *testing.T) {
			if !slices.Contains(arches, tc.arch) {
				t.Skipf("not built in this run (REGENTE_RELEASE_ARCHES=%q); make test RELEASE_ARCHES=\"arm64 armv7\" builds and checks both", strings.Join(arches, " "))
			}
			path := filepath.Join(repo, "dist", tc.file)
			checkStaticELF(t, path, tc.machine, tc.class)
			sums, err := os.ReadFile(filepath.Join(repo, "dist", "sha256sum-"+tc.arch+".txt"))
			if err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(data)
			if want := hex.EncodeToString(sum[:]) + "  " + tc.file + "\n"; string(sums) != want {
				t.Errorf("sha256sum-%s.txt = %q, want %q", tc.arch, sums, want)
			}
			qemu, err := exec.LookPath(tc.qemu)
			if err != nil {
				t.Fatalf("%s is missing: run hack/deps.sh (qemu-user-static)", tc.qemu)
			}
			// The download unpacks regente over itself on its first run:
			// a copy keeps dist/ as released. qemu-user cannot exec the
			// unpacked program the way the launcher does on the device,
			// so the test asks for the unpack only and runs it itself.
			download := filepath.Join(t.TempDir(), tc.file)
			if err := os.WriteFile(download, data, 0o755); err != nil {
				t.Fatal(err)
			}
			unpack := exec.Command(qemu, download)
			unpack.Env = append(os.Environ(), "REGENTE_UNPACK_ONLY=1")
			out, err := unpack.CombinedOutput()
			if err != nil || !strings.Contains(string(out), download) {
				t.Fatalf("unpack %s under %s: %v\n%s", tc.file, tc.qemu, err, out)
			}
			fi, _ := os.Stat(download)
			t.Logf("%s: %.1f MiB to download, %.1f MiB unpacked", tc.file, float64(len(data))/(1<<20), float64(fi.Size())/(1<<20))
			if fi.Size() <= int64(len(data)) {
				t.Errorf("%s did not unpack: %d bytes before and after", tc.file, fi.Size())
			}
			checkStaticELF(t, download, tc.machine, tc.class)
			path = download
			out, err = exec.Command(qemu, path, "--version").CombinedOutput()
			if err != nil || !strings.Contains(string(out), "v1.37") {
				t.Fatalf("%s --version under %s: %v\n%s", tc.file, tc.qemu, err, out)
			}
			t.Logf("under %s: %s", tc.qemu, strings.TrimSpace(string(out)))
			if tc.arch != "arm64" {
				return
			}
			out, err = exec.Command(qemu, path, "check-config").CombinedOutput()
			if err != nil {
				t.Fatalf("%s check-config under %s: %v\n%s", tc.file, tc.qemu, err, out)
			}
			t.Logf("check-config under %s:\n%s", tc.qemu, tail(string(out)))
		})
	}
}

// checkStaticELF fails t unless path is a static ELF file for machine.
func checkStaticELF(t *testing.T, path string, machine elf.Machine, class elf.Class) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	defer f.Close()
	if f.Machine != machine || f.Class != class {
		t.Errorf("%s is %s %s, want %s %s", path, f.Machine, f.Class, machine, class)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s has a program interpreter: it is not statically linked", path)
		}
	}
}

// waitRelease waits for the background release build whose output goes
// to log and whose exit status hack/test.sh writes to log.rc.
func waitRelease(t *testing.T, log string) {
	t.Helper()
	// A line every five minutes, so that a run cut off while waiting shows
	// how far the builds got.
	nextNote := time.Now()
	for deadline := time.Now().Add(60 * time.Minute); ; time.Sleep(5 * time.Second) {
		if time.Now().After(nextNote) {
			out, _ := os.ReadFile(log)
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			t.Logf("waiting for the background release build: %s", lines[len(lines)-1])
			nextNote = time.Now().Add(5 * time.Minute)
		}
		rc, err := os.ReadFile(log + ".rc")
		if err == nil && strings.TrimSpace(string(rc)) != "" {
			if strings.TrimSpace(string(rc)) != "0" {
				out, _ := os.ReadFile(log)
				t.Fatalf("hack/release.sh (background, log %s) exited %s:\n%s", log, strings.TrimSpace(string(rc)), tail(string(out)))
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the background release build (log %s) has not finished after an hour", log)
		}
	}
}
