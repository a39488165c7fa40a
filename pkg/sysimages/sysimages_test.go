package sysimages

import (
	"os"
	"strings"
	"testing"
)

// The tag in each image name must be the release the build links.
func TestVersionsMatchTheirModules(t *testing.T) {
	for dir, require := range map[string]string{
		"coredns":                "github.com/coredns/coredns " + CoreDNSVersion,
		"metrics-server":         "sigs.k8s.io/metrics-server " + MetricsServerVersion,
		"local-path-provisioner": "github.com/rancher/local-path-provisioner " + LocalPathVersion,
	} {
		gomod, err := os.ReadFile("../../hack/images/" + dir + "/go.mod")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(gomod), require) {
			t.Errorf("hack/images/%s/go.mod does not require %q: update the version constant with the pin", dir, require)
		}
	}
}

func TestRefFor(t *testing.T) {
	coredns, ok := Lookup("coredns")
	if !ok {
		t.Fatal("no coredns image")
	}
	if got := coredns.RefFor(""); got != "regente.invalid/coredns:"+CoreDNSVersion {
		t.Errorf("RefFor(\"\") = %q", got)
	}
	if got := coredns.RefFor("mirror.example/"); got != "mirror.example/coredns/coredns:1.15.0" {
		t.Errorf("RefFor(mirror) = %q", got)
	}
}
