//go:build integration

package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// prepareRuntimes readies a node for testRuntimes before it starts: a
// containerd config template that adds a "custom" handler, and a program
// named crun on regente's PATH for the runtime detection to find. Both are
// a script that logs its name and runs the payload's runc, which the shim
// finds on containerd's PATH. It returns the log the scripts write.
func prepareRuntimes(t *testing.T, s *server) string {
	t.Helper()
	dir := t.TempDir()
	log := filepath.Join(dir, "runtimes.log")
	for _, name := range []string{"runc-custom", "crun"} {
		script := fmt.Sprintf("#!/bin/sh\necho \"%s $*\" >>%s\nexec runc \"$@\"\n", name, log)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	etc := filepath.Join(s.dataDir, "agent", "etc", "containerd")
	if err := os.MkdirAll(etc, 0o700); err != nil {
		t.Fatal(err)
	}
	tmpl := `{{ template "base" . }}
[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.custom]
  runtime_type = "io.containerd.runc.v2"
  [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.custom.options]
    BinaryName = "` + filepath.Join(dir, "runc-custom") + `"
`
	if err := os.WriteFile(filepath.Join(etc, "config-v3.toml.tmpl"), []byte(tmpl), 0o600); err != nil {
		t.Fatal(err)
	}
	s.wrap = []string{"env", "PATH=" + dir + ":" + os.Getenv("PATH")}
	return log
}

// testRuntimes runs a pod through the template's handler (with a
// RuntimeClass of the test's) and one through the detected crun (with the
// runtimes add-on's RuntimeClass), and checks that each went through its
// runtime's program.
func testRuntimes(t *testing.T, s *server, image, log string) {
	t.Run("containerd template and detected runtimes run pods", func(t *testing.T) {
		if !strings.Contains(s.log.String(), "rendered from the user's template") || !strings.Contains(s.log.String(), "runtimes=\"crun\"") {
			t.Errorf("the log does not say the template and crun were used:\n%s", tail(s.log.String()))
		}
		s.apply(`apiVersion: node.k8s.io/v1
kind: RuntimeClass
metadata: {name: custom}
handler: custom
`)
		for _, class := range []string{"custom", "crun"} {
			s.apply(`apiVersion: v1
kind: Pod
metadata: {name: rt-` + class + `}
spec:
  runtimeClassName: ` + class + `
  restartPolicy: Never
  containers:
  - name: main
    image: ` + image + `
    imagePullPolicy: Never
    command: ["/bin/busybox", "echo", "ran-with-` + class + `"]
`)
		}
		eventually(t, 90*time.Second, "both pods Succeeded", func() error {
			out := s.kubectl("get", "pods", "rt-custom", "rt-crun", "-o", "jsonpath={.items[*].status.phase}")
			if out != "Succeeded Succeeded" {
				return fmt.Errorf("phases %q", out)
			}
			return nil
		})
		b, err := os.ReadFile(log)
		if err != nil {
			t.Fatal(err)
		}
		for _, prog := range []string{"runc-custom", "crun"} {
			if !strings.Contains(string(b), prog+" ") || !strings.Contains(string(b), " create ") {
				t.Errorf("no container was created through %s:\n%s", prog, b)
			}
		}
		if out := s.kubectl("logs", "rt-custom"); strings.TrimSpace(out) != "ran-with-custom" {
			t.Errorf("logs of rt-custom = %q", out)
		}
		s.kubectl("delete", "pod", "rt-custom", "rt-crun", "--wait=false")
	})
}
