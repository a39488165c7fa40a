package sysimages

import (
	"os"
	"strings"
	"testing"
)

// The tag in the image name must be the CoreDNS the build links.
func TestCoreDNSVersionMatchesItsModule(t *testing.T) {
	gomod, err := os.ReadFile("../../hack/images/coredns/go.mod")
	if err != nil {
		t.Fatal(err)
	}
	if want := "github.com/coredns/coredns " + CoreDNSVersion; !strings.Contains(string(gomod), want) {
		t.Errorf("hack/images/coredns/go.mod does not require %q: update CoreDNSVersion with the pin", want)
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
