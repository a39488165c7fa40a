package ociarchive

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"runtime"
	"sort"
	"time"

	"github.com/klauspost/compress/zstd"
)

// File is one file of the image's single layer: a regular file, or a
// symlink when Link is set.
type File struct {
	Path string // absolute path inside the image, e.g. /pause
	Mode int64
	Data []byte
	Link string // symlink target, e.g. "busybox" for /bin/sh
}

// Image describes the image to write.
type Image struct {
	Name       string   // full reference, e.g. regente.invalid/pause:1
	Entrypoint []string // the config's Entrypoint
	Cmd        []string
	Env        []string
	Files      []File
	Arch       string // GOARCH; empty means this machine's
}

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Platform    map[string]string `json:"platform,omitempty"`
}

// Write writes img as an OCI layout tar to w. The output depends only on
// img, so the same inputs give the same bytes and digests.
func Write(w io.Writer, img Image) error {
	arch := img.Arch
	if arch == "" {
		arch = runtime.GOARCH
	}
	layer, diffID, err := layerTarZstd(img.Files)
	if err != nil {
		return err
	}
	config, err := json.Marshal(map[string]any{
		"architecture": arch,
		"os":           "linux",
		"created":      time.Unix(0, 0).UTC(),
		"config":       map[string]any{"Entrypoint": img.Entrypoint, "Cmd": img.Cmd, "Env": img.Env},
		"rootfs":       map[string]any{"type": "layers", "diff_ids": []string{diffID}},
	})
	if err != nil {
		return fmt.Errorf("encode image config: %w", err)
	}
	configDesc := describe("application/vnd.oci.image.config.v1+json", config)
	// zstd rather than gzip: the system images are most of the payload's
	// bytes, and zstd's best level stores them about a quarter smaller in
	// the binary and in containerd's content store, and unpacks faster.
	layerDesc := describe("application/vnd.oci.image.layer.v1.tar+zstd", layer)
	manifest, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        configDesc,
		"layers":        []descriptor{layerDesc},
	})
	if err != nil {
		return fmt.Errorf("encode manifest: %w", err)
	}
	manifestDesc := describe("application/vnd.oci.image.manifest.v1+json", manifest)
	manifestDesc.Annotations = map[string]string{
		"io.containerd.image.name":          img.Name,
		"org.opencontainers.image.ref.name": tagOf(img.Name),
	}
	manifestDesc.Platform = map[string]string{"architecture": arch, "os": "linux"}
	index, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.index.v1+json",
		"manifests":     []descriptor{manifestDesc},
	})
	if err != nil {
		return fmt.Errorf("encode index: %w", err)
	}
	tw := tar.NewWriter(w)
	entries := []struct {
		name string
		data []byte
	}{
		{"oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)},
		{"index.json", index},
		{blobPath(configDesc), config},
		{blobPath(layerDesc), layer},
		{blobPath(manifestDesc), manifest},
	}
	for _, e := range entries {
		if err := writeTarFile(tw, e.name, 0o644, e.data); err != nil {
			return err
		}
	}
	return tw.Close()
}

// WriteFile writes img to path.
func WriteFile(path string, img Image) error {
	var buf bytes.Buffer
	if err := Write(&buf, img); err != nil {
		return fmt.Errorf("build image %s: %w", img.Name, err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write image %s: %w", path, err)
	}
	return nil
}

func layerTarZstd(files []File) (compressed []byte, diffID string, err error) {
	sorted := append([]File(nil), files...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Path < sorted[j].Path })
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	dirs := map[string]bool{}
	for _, f := range sorted {
		name := path.Clean("/" + f.Path)[1:]
		for d := path.Dir(name); d != "." && !dirs[d]; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	var dirList []string
	for d := range dirs {
		dirList = append(dirList, d)
	}
	sort.Strings(dirList)
	for _, d := range dirList {
		if err := tw.WriteHeader(&tar.Header{Name: d + "/", Mode: 0o755, Typeflag: tar.TypeDir, Format: tar.FormatPAX}); err != nil {
			return nil, "", err
		}
	}
	for _, f := range sorted {
		name := path.Clean("/" + f.Path)[1:]
		if f.Link != "" {
			if err := tw.WriteHeader(&tar.Header{Name: name, Linkname: f.Link, Mode: 0o777, Typeflag: tar.TypeSymlink, Format: tar.FormatPAX}); err != nil {
				return nil, "", err
			}
			continue
		}
		if err := writeTarFile(tw, name, f.Mode, f.Data); err != nil {
			return nil, "", err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, "", err
	}
	sum := sha256.Sum256(raw.Bytes())
	// One goroutine, so the same layer gives the same bytes on every build.
	zw, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedBestCompression), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return nil, "", fmt.Errorf("start zstd: %w", err)
	}
	defer zw.Close()
	return zw.EncodeAll(raw.Bytes(), nil), "sha256:" + hex.EncodeToString(sum[:]), nil
}

func writeTarFile(tw *tar.Writer, name string, mode int64, data []byte) error {
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: int64(len(data)), Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if _, err := tw.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

func describe(mediaType string, data []byte) descriptor {
	sum := sha256.Sum256(data)
	return descriptor{MediaType: mediaType, Digest: "sha256:" + hex.EncodeToString(sum[:]), Size: int64(len(data))}
}

func blobPath(d descriptor) string { return "blobs/sha256/" + d.Digest[len("sha256:"):] }

// tagOf returns the tag of a reference ("repo:tag" → "tag"), or "latest".
func tagOf(ref string) string {
	for i := len(ref) - 1; i >= 0 && ref[i] != '/'; i-- {
		if ref[i] == ':' {
			return ref[i+1:]
		}
	}
	return "latest"
}
