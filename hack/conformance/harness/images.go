package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Registry is the made-up registry host every test image is named under;
// the nodes mirror it to the harness's registry. It never resolves.
const Registry = "regente.invalid"

// repoList is the e2e framework's KUBE_TEST_REPO_LIST: every registry it
// composes image names from, pointed at Registry. invalidRegistry keeps
// its default, which must stay unpullable.
var repoList = map[string]string{
	"promoterE2eRegistry":      Registry + "/e2e-test-images",
	"buildImageRegistry":       Registry + "/build-image",
	"gcEtcdRegistry":           Registry,
	"gcRegistry":               Registry,
	"sigStorageRegistry":       Registry + "/sig-storage",
	"privateRegistry":          Registry + "/k8s-authenticated-test",
	"dockerLibraryRegistry":    Registry + "/library",
	"cloudProviderGcpRegistry": Registry + "/cloud-provider-gcp",
}

// Inputs are the programs and files the images are made of, all built or
// installed before the harness runs (hack/conformance.sh).
type Inputs struct {
	Rootfs          string // a Debian rootfs (debootstrap) for agnhost, nginx, glibc-dns-testing
	Busybox         string // busybox, built from its release tarball
	Agnhost         string // k8s.io/kubernetes/test/images/agnhost
	Nnp             string // k8s.io/kubernetes/test/images/nonewprivs
	SampleAPIServer string // k8s.io/sample-apiserver
	Etcd            string // this module's etcd
	Pause           string // regente's images/pause
	ImagesSrc       string // k8s.io/kubernetes/test/images in the module cache
}

// file is one file of a layer built in memory.
type file struct {
	path string
	mode int64
	data []byte
	link string // symlink target
	dir  bool
}

// spec is one image: its layers, and its config.
type spec struct {
	refs       []string // names under Registry
	layers     []v1.Layer
	entrypoint []string
	cmd        []string
	env        []string
	user       string
	// note says where its content differs from upstream's image of that
	// name, for the results' README.
	note string
}

// buildImages returns the images the conformance specs run, by name.
// Where the content is not upstream's (a Debian userland for Alpine's, a
// build of another version), the note says so; no spec's result depends
// on it, except where SKIPS.md says.
func buildImages(in Inputs, cacheDir string) ([]spec, error) {
	begin := time.Now()
	base, err := rootfsLayer(in.Rootfs, filepath.Join(cacheDir, "debian-rootfs.tar.gz"))
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "harness: Debian base layer ready in %s\n", time.Since(begin).Round(time.Second))
	read := func(path string) []byte {
		if err != nil {
			return nil
		}
		var b []byte
		b, err = os.ReadFile(path)
		return b
	}
	agnhostBin := read(in.Agnhost)
	crt := read(filepath.Join(in.ImagesSrc, "agnhost/porter/localhost.crt"))
	key := read(filepath.Join(in.ImagesSrc, "agnhost/porter/localhost.key"))
	passwd := read(filepath.Join(in.Rootfs, "etc/passwd"))
	group := read(filepath.Join(in.Rootfs, "etc/group"))
	busybox := read(in.Busybox)
	nnp := read(in.Nnp)
	sample := read(in.SampleAPIServer)
	etcd := read(in.Etcd)
	pause := read(in.Pause)
	html := func(image string) []file {
		return []file{
			{path: "/" + image + ".jpg", mode: 0o644, data: read(filepath.Join(in.ImagesSrc, image, "html", image+".jpg"))},
			{path: "/data.json", mode: 0o644, data: read(filepath.Join(in.ImagesSrc, image, "html", "data.json"))},
		}
	}
	nautilusFiles, kittenFiles := html("nautilus"), html("kitten")
	if err != nil {
		return nil, fmt.Errorf("read the images' inputs: %w", err)
	}

	// agnhost as upstream's Dockerfile assembles it, on Debian instead of
	// Alpine: the program, its second name, the porter certificate, the
	// uploads dir, and the users its specs look for.
	agnhost, err := memLayer([]file{
		{path: "/agnhost", mode: 0o755, data: agnhostBin},
		{path: "/agnhost-2", link: "agnhost"},
		{path: "/localhost.crt", mode: 0o644, data: crt},
		{path: "/localhost.key", mode: 0o644, data: key},
		{path: "/uploads", mode: 0o755, dir: true},
		{path: "/etc/passwd", mode: 0o644, data: append(passwd, "user-defined-in-image:x:1000:1000::/home/user-defined-in-image:/bin/sh\n"...)},
		{path: "/etc/group", mode: 0o644, data: append(group, "user-defined-in-image:x:1000:\ngroup-defined-in-image:x:50000:user-defined-in-image\n"...)},
	})
	if err != nil {
		return nil, err
	}
	bb := []file{{path: "/bin/busybox", mode: 0o755, data: busybox}, {path: "/tmp", mode: 0o1777, dir: true}}
	for _, applet := range busyboxApplets(in.Busybox) {
		if applet != "busybox" {
			bb = append(bb, file{path: "/bin/" + applet, link: "busybox"})
		}
	}
	layers := map[string][]file{
		"busybox":  bb,
		"nautilus": nautilusFiles,
		"kitten":   kittenFiles,
		"nnp":      {{path: "/usr/local/bin/nnp", mode: 0o4755, data: nnp}},
		"sample":   {{path: "/sample-apiserver", mode: 0o755, data: sample}},
		"etcd":     {{path: "/usr/local/bin/etcd", mode: 0o755, data: etcd}, {path: "/var/lib/etcd", mode: 0o700, dir: true}},
		"pause":    {{path: "/pause", mode: 0o755, data: pause}},
	}
	built := map[string]v1.Layer{}
	for n, files := range layers {
		if built[n], err = memLayer(files); err != nil {
			return nil, fmt.Errorf("layer %s: %w", n, err)
		}
	}
	const debian = "Debian bookworm userland (debootstrap) instead of upstream's Alpine"
	pathEnv := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	return []spec{
		{refs: []string{"e2e-test-images/agnhost:2.66.1", "e2e-test-images/agnhost:2.55"}, layers: []v1.Layer{base, agnhost},
			entrypoint: []string{"/agnhost"}, cmd: []string{"pause"}, env: pathEnv,
			note: debian + "; agnhost 2.66.1 (the version of k8s v1.37.2) also under 2.55, which no tagged release builds"},
		{refs: []string{"e2e-test-images/nautilus:1.8"}, layers: []v1.Layer{base, agnhost, built["nautilus"]},
			entrypoint: []string{"/agnhost"}, cmd: []string{"test-webserver"}, env: pathEnv, note: debian},
		{refs: []string{"e2e-test-images/kitten:1.8"}, layers: []v1.Layer{base, agnhost, built["kitten"]},
			entrypoint: []string{"/agnhost"}, cmd: []string{"test-webserver"}, env: pathEnv, note: debian + " (see SKIPS.md)"},
		{refs: []string{"e2e-test-images/busybox:1.37.0-2"}, layers: []v1.Layer{built["busybox"]}, cmd: []string{"sh"},
			env: []string{"PATH=/bin"}, note: "busybox 1.37.0 built from upstream's release tarball (defconfig, static, without tc), its applets in /bin"},
		{refs: []string{"pause:3.10.2"}, layers: []v1.Layer{built["pause"]}, entrypoint: []string{"/pause"}, user: "65535:65535",
			note: "regente's own pause program (images/pause)"},
		{refs: []string{"e2e-test-images/nginx:1.27.0-2", "e2e-test-images/nginx:1.28.0-2"}, layers: []v1.Layer{base},
			cmd: []string{"nginx", "-g", "daemon off;"}, env: pathEnv, note: "Debian's nginx 1.22 instead of upstream's Alpine nginx"},
		{refs: []string{"e2e-test-images/glibc-dns-testing:2.1.1"}, layers: []v1.Layer{base}, cmd: []string{"sh"}, env: pathEnv,
			note: "Debian bookworm with dnsutils, as upstream's (without its unused /coredns)"},
		{refs: []string{"e2e-test-images/nonewprivs:1.4"}, layers: []v1.Layer{built["nnp"]}, cmd: []string{"nnp"},
			env: []string{"PATH=/usr/local/bin"}, note: "nnp alone (setuid root), without upstream's Alpine"},
		{refs: []string{"e2e-test-images/sample-apiserver:1.29.2"}, layers: []v1.Layer{built["sample"]}, entrypoint: []string{"/sample-apiserver"},
			note: "k8s.io/sample-apiserver v0.37.2 instead of 1.29.2"},
		{refs: []string{"etcd:3.7.0-0"}, layers: []v1.Layer{built["etcd"]}, entrypoint: []string{"/usr/local/bin/etcd"},
			note: "etcd v3.7.3 (the version regente links) instead of 3.7.0"},
	}, nil
}

// image assembles s for this machine.
func (s spec) image() (v1.Image, error) {
	img, err := mutate.AppendLayers(empty.Image, s.layers...)
	if err != nil {
		return nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", goarch()
	cfg.Created = v1.Time{Time: time.Unix(0, 0).UTC()}
	cfg.Config.Entrypoint, cfg.Config.Cmd, cfg.Config.Env, cfg.Config.User = s.entrypoint, s.cmd, s.env, s.user
	return mutate.ConfigFile(img, cfg)
}

// writeArchive writes every image, under every name, into one
// docker-archive for the nodes' images dirs; shared layers are stored once.
func writeArchive(specs []spec, path string) error {
	refs := map[name.Reference]v1.Image{}
	for _, s := range specs {
		img, err := s.image()
		if err != nil {
			return err
		}
		for _, r := range s.refs {
			tag, err := name.NewTag(Registry + "/" + r)
			if err != nil {
				return err
			}
			refs[tag] = img
		}
	}
	tmp := path + ".tmp"
	if err := tarball.MultiRefWriteToFile(tmp, refs); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return os.Rename(tmp, path)
}

// busyboxApplets lists the applets of the busybox binary.
func busyboxApplets(busybox string) []string {
	out, err := execOutput(busybox, "--list")
	if err != nil {
		return []string{"sh"}
	}
	return strings.Fields(out)
}

// memLayer is a gzipped layer of files, with parent dirs made as needed.
func memLayer(files []file) (v1.Layer, error) {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	dirs := map[string]bool{}
	sort.Slice(files, func(i, j int) bool { return files[i].path < files[j].path })
	for _, f := range files {
		name := strings.TrimPrefix(f.path, "/")
		for d := filepath.Dir(name); d != "." && !dirs[d]; d = filepath.Dir(d) {
			dirs[d] = true
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755, ModTime: time.Unix(0, 0)}); err != nil {
				return nil, err
			}
		}
		h := &tar.Header{Name: name, Mode: f.mode, ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg, Size: int64(len(f.data))}
		switch {
		case f.link != "":
			h.Typeflag, h.Linkname, h.Size, h.Mode = tar.TypeSymlink, f.link, 0, 0o777
		case f.dir:
			h.Typeflag, h.Name, h.Size = tar.TypeDir, name+"/", 0
			dirs[name] = true
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write(f.data); err != nil {
				return nil, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := gz.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
}

// rootfsLayer packs the rootfs dir into a gzipped layer file once (kept
// at cache, reused while the rootfs is unchanged) and opens it.
func rootfsLayer(root, cache string) (v1.Layer, error) {
	stamp, err := os.Stat(filepath.Join(root, "var/lib/dpkg/status"))
	if err != nil {
		return nil, fmt.Errorf("%s is not a Debian rootfs (run hack/conformance.sh, which makes it with debootstrap): %w", root, err)
	}
	if fi, err := os.Stat(cache); err != nil || fi.ModTime().Before(stamp.ModTime()) {
		if err := packRootfs(root, cache); err != nil {
			return nil, err
		}
	}
	return tarball.LayerFromFile(cache)
}

// skipped are the parts of a rootfs an image has no use for.
var skipped = []string{"dev/", "proc/", "sys/", "run/", "tmp/", "var/cache/apt/", "var/lib/apt/lists/", "usr/share/doc/", "usr/share/man/", "usr/share/locale/", "usr/share/info/"}

func packRootfs(root, out string) error {
	f, err := os.Create(out + ".tmp")
	if err != nil {
		return err
	}
	defer f.Close()
	gz, _ := gzip.NewWriterLevel(f, gzip.BestSpeed)
	tw := tar.NewWriter(gz)
	links := map[uint64]string{}
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if rel == "." {
			return nil
		}
		if d.IsDir() {
			rel += "/"
		}
		for _, s := range skipped {
			if strings.HasPrefix(rel, s) && rel != s {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.Mode()&(fs.ModeDevice|fs.ModeNamedPipe|fs.ModeSocket) != 0 {
			return nil
		}
		target := ""
		if info.Mode()&fs.ModeSymlink != 0 {
			if target, err = os.Readlink(path); err != nil {
				return err
			}
		}
		h, err := tar.FileInfoHeader(info, target)
		if err != nil {
			return err
		}
		h.Name = rel
		h.Uname, h.Gname = "", ""
		h.ModTime = time.Unix(0, 0)
		h.AccessTime, h.ChangeTime = time.Time{}, time.Time{}
		h.Format = tar.FormatPAX
		if st, ok := info.Sys().(*syscall.Stat_t); ok && info.Mode().IsRegular() && st.Nlink > 1 {
			if first, seen := links[st.Ino]; seen {
				h.Typeflag, h.Linkname, h.Size = tar.TypeLink, first, 0
			} else {
				links[st.Ino] = rel
			}
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if h.Typeflag == tar.TypeReg {
			src, err := os.Open(path)
			if err != nil {
				return err
			}
			defer src.Close()
			if _, err := io.Copy(tw, src); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("pack %s: %w", root, err)
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := gz.Close(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(out+".tmp", out)
}
