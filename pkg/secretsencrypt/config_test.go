package secretsencrypt

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func TestEnsureWritesIdentityOrANewKeyOnce(t *testing.T) {
	dir := t.TempDir()
	c, created, err := Ensure(dir, false, "aescbc", t0)
	if err != nil || !created || c.Enabled() {
		t.Fatalf("first Ensure without encryption: created=%v enabled=%v err=%v", created, c.Enabled(), err)
	}
	fi, err := os.Stat(Path(dir))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("config mode: %v %v", fi, err)
	}
	// The flag later does not replace the file: the file says what the
	// data is encrypted with.
	c, created, err = Ensure(dir, true, "aescbc", t0)
	if err != nil || created || c.Enabled() {
		t.Fatalf("second Ensure: created=%v enabled=%v err=%v", created, c.Enabled(), err)
	}
	dir2 := t.TempDir()
	c, _, err = Ensure(dir2, true, "secretbox", t0)
	if err != nil || !c.Enabled() || !slices.Equal(c.KeyNames(), []string{"XSalsa20-Poly1305 secretboxkey-2026-12-01T10-00-00Z", "Identity"}) {
		t.Fatalf("--secrets-encryption with secretbox: %v %v", c.KeyNames(), err)
	}
}

func TestRotationStages(t *testing.T) {
	dir := t.TempDir()
	c, _, err := Ensure(dir, false, "aescbc", t0)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Prepare(t0); err == nil || !strings.Contains(err.Error(), "enable") {
		t.Errorf("prepare while disabled: %v", err)
	}
	if err := c.Enable("aescbc", t0); err != nil {
		t.Fatal(err)
	}
	first := c.KeyNames()[0]
	if err := c.Rotate(); err == nil || !strings.Contains(err.Error(), "prepare` first") {
		t.Errorf("rotate before prepare: %v", err)
	}
	if err := c.Prepare(t0); err != nil {
		t.Fatal(err)
	}
	keys := c.KeyNames()
	if len(keys) != 3 || keys[0] != first || !strings.HasSuffix(keys[1], "-2") || keys[2] != "Identity" || c.Stage != StagePrepare {
		t.Fatalf("after prepare (same second, so a -2 name): %v stage %s", keys, c.Stage)
	}
	if err := c.Prepare(t0); err == nil {
		t.Error("prepare twice should be refused")
	}
	disabled := *c
	disabled.Providers = slices.Clone(c.Providers)
	disabled.Disable()
	if err := disabled.Rotate(); err == nil || !strings.Contains(err.Error(), "enable") {
		t.Errorf("rotate after prepare and disable: %v", err)
	}
	if err := c.Rotate(); err != nil {
		t.Fatal(err)
	}
	if k := c.KeyNames(); k[0] != keys[1] || k[1] != first || c.Stage != StageRotate {
		t.Fatalf("after rotate: %v %s", k, c.Stage)
	}
	c.DropOldKeys()
	if k := c.KeyNames(); !slices.Equal(k, []string{keys[1], "Identity"}) {
		t.Fatalf("after dropping old keys: %v", k)
	}
	c.Stage = StageReencryptFinished
	if _, err := c.Save(); err != nil {
		t.Fatal(err)
	}
	loaded, err := Load(dir)
	if err != nil || !slices.Equal(loaded.KeyNames(), c.KeyNames()) || loaded.Stage != StageReencryptFinished {
		t.Fatalf("reload: %v %s %v", loaded.KeyNames(), loaded.Stage, err)
	}
	loaded.Disable()
	if loaded.Enabled() || loaded.KeyNames()[0] != "Identity" || len(loaded.KeyNames()) != 2 {
		t.Errorf("disable keeps the key after identity: %v", loaded.KeyNames())
	}
	if err := loaded.Enable("secretbox", t0); err != nil || loaded.KeyNames()[0] != keys[1] {
		t.Errorf("enable again reuses the key: %v %v", loaded.KeyNames(), err)
	}
}

func TestLoadRefusesWhatRegenteDoesNotWrite(t *testing.T) {
	for name, content := range map[string]string{
		"not json":       "{",
		"two resources":  `{"resources":[{"resources":["secrets"],"providers":[{"identity":{}}]},{"resources":["configmaps"],"providers":[{"identity":{}}]}]}`,
		"kms provider":   `{"resources":[{"resources":["secrets"],"providers":[{"kms":{"name":"x","endpoint":"unix:///k"}},{"identity":{}}]}]}`,
		"other resource": `{"resources":[{"resources":["configmaps"],"providers":[{"identity":{}}]}]}`,
	} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, ConfigFile), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Load(dir)
		if err == nil || !strings.Contains(err.Error(), ConfigFile) || !strings.Contains(err.Error(), "encryption-provider-config") {
			t.Errorf("%s: %v", name, err)
		}
	}
}
