package sysimages

import "strings"

// Image is one system image.
type Image struct {
	// Name is the program's name: the build puts it at /<Name> and makes
	// it the entrypoint.
	Name string
	// Ref is the name the payload imports it under. The .invalid domain
	// can never resolve to a registry, so a missing image is never pulled.
	Ref string
	// Upstream is the project's own image, repository:tag, which
	// --system-default-registry points at instead.
	Upstream string
	// Program, when set, is a multi-call program the image shares with
	// other images: the layer holds /<Program> and a link /<Name> to it
	// for each image that shares it, so every such image has the same
	// layer, stored and unpacked once.
	Program string
}

// ProgramName is the program the image's layer holds.
func (i Image) ProgramName() string {
	if i.Program != "" {
		return i.Program
	}
	return i.Name
}

// Links are the names, other than the program's own, that the image's
// layer links to its program: one per image that shares it.
func (i Image) Links() []string {
	var links []string
	for _, other := range All() {
		if other.ProgramName() == i.ProgramName() && other.Name != i.ProgramName() {
			links = append(links, other.Name)
		}
	}
	return links
}

// PauseRef is the sandbox image every pod runs.
const PauseRef = "regente.invalid/pause:1"

// CoreDNSVersion is the CoreDNS release hack/images/addons links; a test
// checks it against that module's go.mod.
const CoreDNSVersion = "v1.15.0"

// MetricsServerVersion is the metrics-server release hack/images/addons
// links; a test checks it against that module.
const MetricsServerVersion = "v0.9.0"

// LocalPathVersion is the local-path provisioner release
// hack/images/local-path-provisioner builds; a test checks it against that
// module.
const LocalPathVersion = "v0.0.30"

// All lists the system images.
func All() []Image {
	return []Image{
		{Name: "pause", Ref: PauseRef, Upstream: "pause:3.10"},
		{Name: "coredns", Ref: "regente.invalid/coredns:" + CoreDNSVersion, Upstream: "coredns/coredns:" + strings.TrimPrefix(CoreDNSVersion, "v"), Program: "addons"},
		{Name: "svclb", Ref: "regente.invalid/svclb:1", Upstream: "regente/svclb:1"},
		{Name: "local-path-provisioner", Ref: "regente.invalid/local-path-provisioner:" + LocalPathVersion, Upstream: "rancher/local-path-provisioner:" + LocalPathVersion},
		{Name: "local-path-helper", Ref: "regente.invalid/local-path-helper:1", Upstream: "regente/local-path-helper:1"},
		{Name: "ingress", Ref: "regente.invalid/ingress:1", Upstream: "regente/ingress:1", Program: "addons"},
		{Name: "metrics-server", Ref: "regente.invalid/metrics-server:" + MetricsServerVersion, Upstream: "metrics-server/metrics-server:" + MetricsServerVersion, Program: "addons"},
	}
}

// Lookup returns the system image called name.
func Lookup(name string) (Image, bool) {
	for _, i := range All() {
		if i.Name == name {
			return i, true
		}
	}
	return Image{}, false
}

// RefFor is the reference pods use: the embedded image, or with a
// registry, the upstream image under it.
func (i Image) RefFor(registry string) string {
	if registry == "" {
		return i.Ref
	}
	return strings.TrimSuffix(registry, "/") + "/" + i.Upstream
}
