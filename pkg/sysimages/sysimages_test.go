package sysimages

import (
	"os"
	"slices"
	"strings"
	"testing"
)

// The tag in each image name must be the release the build links.
func TestVersionsMatchTheirModules(t *testing.T) {
	for _, tc := range []struct{ dir, require string }{
		{"addons", "github.com/coredns/coredns " + CoreDNSVersion},
		{"addons", "sigs.k8s.io/metrics-server " + MetricsServerVersion},
		{"local-path-provisioner", "github.com/rancher/local-path-provisioner " + LocalPathVersion},
	} {
		dir, require := tc.dir, tc.require
		gomod, err := os.ReadFile("../../hack/images/" + dir + "/go.mod")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(gomod), require) {
			t.Errorf("hack/images/%s/go.mod does not require %q: update the version constant with the pin", dir, require)
		}
	}
}

// Images sharing a program must get the same layer: the same links.
func TestSharedProgramLinks(t *testing.T) {
	want := []string{"coredns", "ingress", "metrics-server"}
	for _, name := range want {
		img, _ := Lookup(name)
		if img.ProgramName() != "addons" {
			t.Errorf("%s: program %q, want addons", name, img.ProgramName())
		}
		if got := img.Links(); !slices.Equal(got, want) {
			t.Errorf("%s links %v, want %v", img.Name, got, want)
		}
	}
	if pause, _ := Lookup("pause"); pause.ProgramName() != "pause" || len(pause.Links()) != 0 {
		t.Errorf("pause: program %q, links %v; want its own program and no links", pause.ProgramName(), pause.Links())
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
