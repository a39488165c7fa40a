package deploy

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

var addons = fstest.MapFS{
	"dns.yaml":     {Data: []byte("kind: ConfigMap\ndata: {ip: {{ .ClusterDNS }}, image: {{ .Images.CoreDNS }}}\n")},
	"storage.yaml": {Data: []byte("kind: StorageClass\n")},
	"README":       {Data: []byte("not an add-on")},
}

func TestStage(t *testing.T) {
	dir := t.TempDir()
	values := Values{ClusterDNS: "10.43.0.10", Images: Images{CoreDNS: "regente.invalid/coredns:v1"}}
	staged, err := Stage(addons, dir, values, nil)
	if err != nil || strings.Join(staged, ",") != "dns,storage" {
		t.Fatalf("Stage = %v, %v", staged, err)
	}
	got, _ := os.ReadFile(filepath.Join(dir, "dns.yaml"))
	if want := "kind: ConfigMap\ndata: {ip: 10.43.0.10, image: regente.invalid/coredns:v1}\n"; string(got) != want {
		t.Errorf("dns.yaml = %q, want %q", got, want)
	}

	// A .skip marker keeps the user's edited copy.
	edited := []byte("kind: ConfigMap # mine\n")
	os.WriteFile(filepath.Join(dir, "dns.yaml"), edited, 0o600)
	os.WriteFile(filepath.Join(dir, "dns.yaml.skip"), nil, 0o600)
	if _, err := Stage(addons, dir, values, nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "dns.yaml")); string(got) != string(edited) {
		t.Errorf("skip marker ignored: dns.yaml = %q", got)
	}

	// Disabling removes the staged file, so the controller deletes its objects.
	staged, err = Stage(addons, dir, values, []string{"storage"})
	if err != nil || len(staged) != 0 {
		t.Fatalf("Stage with storage disabled = %v, %v", staged, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "storage.yaml")); !os.IsNotExist(err) {
		t.Errorf("storage.yaml still there after --disable storage: %v", err)
	}
}

func TestStageReportsTemplateErrors(t *testing.T) {
	bad := fstest.MapFS{"x.yaml": {Data: []byte("{{ .NoSuchValue }}")}}
	_, err := Stage(bad, t.TempDir(), Values{}, nil)
	if err == nil || !strings.Contains(err.Error(), "x.yaml") {
		t.Fatalf("err = %v, want one naming x.yaml", err)
	}
}

func TestNames(t *testing.T) {
	if got := strings.Join(Names(addons), ","); got != "dns,storage" {
		t.Errorf("Names = %s", got)
	}
}

func TestDecode(t *testing.T) {
	objs, err := decode([]byte(`apiVersion: v1
kind: ConfigMap
metadata: {name: a}
---
# only a comment
---
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Secret, metadata: {name: b}}
- {apiVersion: v1, kind: Secret, metadata: {name: c}}
`))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, o := range objs {
		names = append(names, o.GetKind()+"/"+o.GetName())
	}
	if got := strings.Join(names, ","); got != "ConfigMap/a,Secret/b,Secret/c" {
		t.Errorf("decoded %s", got)
	}
	for _, bad := range []string{"kind: ConfigMap\nmetadata: {name: a}\n", "apiVersion: v1\nkind: ConfigMap\n", "a: [unclosed\n"} {
		if _, err := decode([]byte(bad)); err == nil {
			t.Errorf("decode(%q) accepted", bad)
		}
	}
}

func TestManifestFiles(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"b.yaml", "a.json", "c.yml", "d.yaml.skip", ".hidden.yaml", "notes.txt"} {
		os.WriteFile(filepath.Join(dir, f), nil, 0o600)
	}
	files, err := manifestFiles(dir)
	if err != nil || strings.Join(files, ",") != "a.json,b.yaml,c.yml" {
		t.Errorf("manifestFiles = %v, %v", files, err)
	}
}

func TestRecordName(t *testing.T) {
	a, b := recordName("My_App.yaml"), recordName("my-app.yaml")
	if a == b {
		t.Errorf("record names collide: %s", a)
	}
	if !strings.HasPrefix(a, "regente-manifest-my-app-yaml-") || len(recordName(strings.Repeat("x", 300)+".yaml")) > 63 {
		t.Errorf("recordName = %s", a)
	}
}

func TestInitRejectsUnknownAddon(t *testing.T) {
	d := New(Config{Addons: addons, Controllers: []string{"servicelb"}, Disabled: []string{"dns", "servicelb"}})
	if err := d.Init(context.Background()); err != nil {
		t.Fatalf("known names refused: %v", err)
	}
	// A k3s config file disables traefik: that is regente's ingress.
	withIngress := fstest.MapFS{"ingress.yaml": {Data: []byte("kind: IngressClass\n")}}
	d = New(Config{Addons: withIngress, Controllers: []string{"servicelb"}, Disabled: []string{"traefik"}})
	if err := d.Init(context.Background()); err != nil {
		t.Fatalf("--disable traefik, from a k3s config, refused: %v", err)
	}
	if !slices.Equal(d.cfg.Disabled, []string{"ingress"}) {
		t.Errorf("--disable traefik disables %v, want [ingress]", d.cfg.Disabled)
	}
	d = New(Config{Addons: addons, Controllers: []string{"servicelb"}, Disabled: []string{"trafik"}})
	err := d.Init(context.Background())
	if err == nil || !strings.Contains(err.Error(), `--disable "trafik"`) || !strings.Contains(err.Error(), "dns, storage, servicelb") {
		t.Fatalf("err = %v, want one naming the input and the choices", err)
	}
}
