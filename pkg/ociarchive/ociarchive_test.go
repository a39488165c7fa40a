package ociarchive

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"testing"

	"github.com/klauspost/compress/zstd"
)

func readTar(t *testing.T, r io.Reader) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		out[h.Name] = b
	}
}

func TestWriteProducesAConsistentLayout(t *testing.T) {
	img := Image{Name: "regente.invalid/pause:1", Entrypoint: []string{"/pause"},
		Files: []File{{Path: "/pause", Mode: 0o755, Data: []byte("binary")}, {Path: "/etc/passwd", Mode: 0o644, Data: []byte("root:x:0:0::/:/pause\n")},
			{Path: "/bin/sh", Link: "../pause"}}}
	var a, b bytes.Buffer
	if err := Write(&a, img); err != nil {
		t.Fatal(err)
	}
	Write(&b, img)
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("same image gave different archives")
	}
	files := readTar(t, &a)
	var index struct {
		Manifests []descriptor `json:"manifests"`
	}
	if err := json.Unmarshal(files["index.json"], &index); err != nil || len(index.Manifests) != 1 {
		t.Fatalf("index.json: %v %s", err, files["index.json"])
	}
	m := index.Manifests[0]
	if m.Annotations["io.containerd.image.name"] != img.Name || m.Annotations["org.opencontainers.image.ref.name"] != "1" {
		t.Fatalf("annotations %v", m.Annotations)
	}
	blob := func(d descriptor) []byte {
		data, ok := files[blobPath(d)]
		sum := sha256.Sum256(data)
		if !ok || "sha256:"+hex.EncodeToString(sum[:]) != d.Digest || int64(len(data)) != d.Size {
			t.Fatalf("blob %s missing or does not match its descriptor", d.Digest)
		}
		return data
	}
	var manifest struct {
		Config descriptor   `json:"config"`
		Layers []descriptor `json:"layers"`
	}
	json.Unmarshal(blob(m), &manifest)
	var config struct {
		RootFS struct {
			DiffIDs []string `json:"diff_ids"`
		} `json:"rootfs"`
	}
	json.Unmarshal(blob(manifest.Config), &config)
	if got := manifest.Layers[0].MediaType; got != "application/vnd.oci.image.layer.v1.tar+zstd" {
		t.Fatalf("layer media type %q, want tar+zstd", got)
	}
	zr, err := zstd.NewReader(bytes.NewReader(blob(manifest.Layers[0])))
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("decompress layer: %v", err)
	}
	sum := sha256.Sum256(raw)
	if config.RootFS.DiffIDs[0] != "sha256:"+hex.EncodeToString(sum[:]) {
		t.Fatal("diff_id does not match the uncompressed layer")
	}
	layer := readTar(t, bytes.NewReader(raw))
	if string(layer["pause"]) != "binary" || layer["etc/"] == nil {
		t.Fatalf("layer entries: %v", keys(layer))
	}
}

func keys(m map[string][]byte) []string {
	var k []string
	for n := range m {
		k = append(k, n)
	}
	return k
}

func TestTagOf(t *testing.T) {
	for ref, want := range map[string]string{"a/b:1": "1", "host:5000/a/b": "latest", "host:5000/a/b:v2": "v2"} {
		if got := tagOf(ref); got != want {
			t.Errorf("tagOf(%q) = %q, want %q", ref, got, want)
		}
	}
}
