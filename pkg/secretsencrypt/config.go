package secretsencrypt

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	apiserverv1 "k8s.io/apiserver/pkg/apis/apiserver/v1"

	"regente.io/regente/pkg/atomicfile"
)

// Stage is where a key rotation stands, in k3s's names.
type Stage string

// The stages: prepare adds a key every server can decrypt with, rotate
// makes it the one that encrypts, reencrypt rewrites every Secret with it
// and drops the old keys.
const (
	StageStart             Stage = "start"
	StagePrepare           Stage = "prepare"
	StageRotate            Stage = "rotate"
	StageReencryptActive   Stage = "reencrypt_active"
	StageReencryptFinished Stage = "reencrypt_finished"
)

// Providers are the key providers regente writes: upstream's names.
var Providers = []string{"aescbc", "secretbox"}

// ConfigFile and StateFile are the file names in the server's cred dir.
const (
	ConfigFile = "encryption-config.json"
	StateFile  = "encryption-state.json"
)

// Config is the encryption configuration and its stage, as on disk.
type Config struct {
	Dir   string
	Stage Stage
	// Providers are the Secrets' providers in order: the first encrypts,
	// every one decrypts.
	Providers []apiserverv1.ProviderConfiguration
}

type stateFile struct {
	Stage Stage `json:"stage"`
}

// Path is the configuration file the API server reads.
func Path(dir string) string { return filepath.Join(dir, ConfigFile) }

// Load reads the configuration and stage in dir.
func Load(dir string) (*Config, error) {
	path := Path(dir)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err // *fs.PathError names the file
	}
	var ec apiserverv1.EncryptionConfiguration
	if err := json.Unmarshal(b, &ec); err != nil {
		return nil, fmt.Errorf("%s is not an EncryptionConfiguration (%v): restore it from a backup; regente writes it, and a hand-written one goes in --kube-apiserver-arg=encryption-provider-config=<file>", path, err)
	}
	if len(ec.Resources) != 1 || !slices.Equal(ec.Resources[0].Resources, []string{"secrets"}) {
		return nil, fmt.Errorf("%s must hold one entry, for secrets, as regente writes it: restore it, or give your own with --kube-apiserver-arg=encryption-provider-config=<file>", path)
	}
	c := &Config{Dir: dir, Stage: StageStart, Providers: ec.Resources[0].Providers}
	for i, p := range c.Providers {
		if kind, _ := describe(p); kind == "" {
			return nil, fmt.Errorf("%s: provider %d is not aescbc, secretbox or identity, which regente manages: restore the file, or give your own with --kube-apiserver-arg=encryption-provider-config=<file>", path, i+1)
		}
	}
	sb, err := os.ReadFile(filepath.Join(dir, StateFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, err
	default:
		var st stateFile
		if err := json.Unmarshal(sb, &st); err != nil || st.Stage == "" {
			return nil, fmt.Errorf("%s is damaged (%v): write {\"stage\": \"start\"} into it to go on", filepath.Join(dir, StateFile), err)
		}
		c.Stage = st.Stage
	}
	return c, nil
}

// Ensure loads the configuration in dir, or writes a first one: with a
// new key of provider when enable, else identity alone, so the API server
// always runs with the file and a later enable needs no restart.
func Ensure(dir string, enable bool, provider string, now time.Time) (c *Config, created bool, err error) {
	c, err = Load(dir)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return c, false, err
	}
	c = &Config{Dir: dir, Stage: StageStart, Providers: []apiserverv1.ProviderConfiguration{{Identity: &apiserverv1.IdentityConfiguration{}}}}
	if enable {
		if err := c.Enable(provider, now); err != nil {
			return nil, false, err
		}
	}
	if _, err := c.Save(); err != nil {
		return nil, false, err
	}
	return c, true, nil
}

// Encode returns the file's bytes.
func (c *Config) Encode() ([]byte, error) {
	ec := apiserverv1.EncryptionConfiguration{Resources: []apiserverv1.ResourceConfiguration{{Resources: []string{"secrets"}, Providers: c.Providers}}}
	ec.APIVersion, ec.Kind = "apiserver.config.k8s.io/v1", "EncryptionConfiguration"
	b, err := json.MarshalIndent(ec, "", "  ")
	return append(b, '\n'), err
}

// Save writes the configuration and the stage (0600, atomically) and
// returns the hash the API server reports once it has loaded this file.
func (c *Config) Save() (string, error) {
	b, err := c.Encode()
	if err != nil {
		return "", err
	}
	st, err := json.Marshal(stateFile{Stage: c.Stage})
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(c.Dir, 0o700); err != nil {
		return "", err
	}
	if err := atomicfile.Write(
		atomicfile.File{Path: Path(c.Dir), Data: b, Mode: 0o600},
		atomicfile.File{Path: filepath.Join(c.Dir, StateFile), Data: append(st, '\n'), Mode: 0o600},
	); err != nil {
		return "", fmt.Errorf("write the encryption configuration: %w", err)
	}
	return Hash(b), nil
}

// Hash is how the API server names a configuration file's content in its
// apiserver_encryption_config_controller_last_config_info metric.
func Hash(content []byte) string { return fmt.Sprintf("sha256:%x", sha256.Sum256(content)) }

// Enabled says whether new Secrets are encrypted: a key provider comes
// first.
func (c *Config) Enabled() bool { return len(c.Providers) > 0 && c.Providers[0].Identity == nil }

// keyProvider returns the index of the key provider, or -1.
func (c *Config) keyProvider() int {
	return slices.IndexFunc(c.Providers, func(p apiserverv1.ProviderConfiguration) bool { return p.Identity == nil })
}

// keys returns the key list of the provider at i.
func (c *Config) keys(i int) *[]apiserverv1.Key {
	if p := c.Providers[i]; p.AESCBC != nil {
		return &p.AESCBC.Keys
	} else if p.Secretbox != nil {
		return &p.Secretbox.Keys
	}
	return nil
}

// Enable puts the key provider first, with a new key of provider's kind
// if there is none yet.
func (c *Config) Enable(provider string, now time.Time) error {
	if c.Enabled() {
		return nil
	}
	i := c.keyProvider()
	if i < 0 {
		key, err := newKey(provider, now)
		if err != nil {
			return err
		}
		p := apiserverv1.ProviderConfiguration{}
		switch provider {
		case "aescbc":
			p.AESCBC = &apiserverv1.AESConfiguration{Keys: []apiserverv1.Key{key}}
		case "secretbox":
			p.Secretbox = &apiserverv1.SecretboxConfiguration{Keys: []apiserverv1.Key{key}}
		default:
			return fmt.Errorf("encryption provider %q is not one of %s", provider, strings.Join(Providers, ", "))
		}
		c.Providers = append([]apiserverv1.ProviderConfiguration{p}, c.Providers...)
		return nil
	}
	c.Providers = append([]apiserverv1.ProviderConfiguration{c.Providers[i]}, slices.Delete(slices.Clone(c.Providers), i, i+1)...)
	return nil
}

// Disable puts identity first: new Secrets are stored in plain text, and
// the keys stay to read the encrypted ones.
func (c *Config) Disable() {
	i := slices.IndexFunc(c.Providers, func(p apiserverv1.ProviderConfiguration) bool { return p.Identity != nil })
	if i <= 0 {
		if i < 0 {
			c.Providers = append([]apiserverv1.ProviderConfiguration{{Identity: &apiserverv1.IdentityConfiguration{}}}, c.Providers...)
		}
		return
	}
	c.Providers = append([]apiserverv1.ProviderConfiguration{c.Providers[i]}, slices.Delete(slices.Clone(c.Providers), i, i+1)...)
}

// checkRotatable refuses a new key while encryption is off or a rotation
// is half done.
func (c *Config) checkRotatable(verb string) error {
	if !c.Enabled() {
		return fmt.Errorf("secrets encryption is disabled: run `regente secrets-encrypt enable` before %s", verb)
	}
	if c.Stage != StageStart && c.Stage != StageReencryptFinished {
		return fmt.Errorf("a key rotation is at stage %s: finish it (prepare, rotate, reencrypt) before %s", c.Stage, verb)
	}
	return nil
}

// Prepare adds a new key after the current one: it decrypts but does not
// encrypt yet.
func (c *Config) Prepare(now time.Time) error {
	if err := c.checkRotatable("prepare"); err != nil {
		return err
	}
	return c.addKey(now, false)
}

// Rotate makes the prepared key the one that encrypts.
func (c *Config) Rotate() error {
	if !c.Enabled() {
		return fmt.Errorf("secrets encryption is disabled: run `regente secrets-encrypt enable` before rotate")
	}
	if c.Stage != StagePrepare {
		return fmt.Errorf("rotate follows prepare, but the stage is %s: run `regente secrets-encrypt prepare` first", c.Stage)
	}
	keys := c.keys(0)
	last := (*keys)[len(*keys)-1]
	*keys = append([]apiserverv1.Key{last}, (*keys)[:len(*keys)-1]...)
	c.Stage = StageRotate
	return nil
}

// AddFirstKey adds a new key that encrypts at once, keeping the old ones
// to decrypt (rotate-keys' first step).
func (c *Config) AddFirstKey(now time.Time) error {
	if err := c.checkRotatable("rotate-keys"); err != nil {
		return err
	}
	return c.addKey(now, true)
}

func (c *Config) addKey(now time.Time, first bool) error {
	keys := c.keys(0)
	kind := "aescbc"
	if c.Providers[0].Secretbox != nil {
		kind = "secretbox"
	}
	key, err := newKey(kind, now)
	if err != nil {
		return err
	}
	// Names must differ within a provider; two rotations in one second
	// would otherwise reuse one.
	for n := 2; slices.ContainsFunc(*keys, func(k apiserverv1.Key) bool { return k.Name == key.Name }); n++ {
		key.Name = fmt.Sprintf("%s-%d", strings.TrimSuffix(key.Name, fmt.Sprintf("-%d", n-1)), n)
	}
	if first {
		*keys = append([]apiserverv1.Key{key}, *keys...)
		c.Stage = StageRotate
	} else {
		*keys = append(*keys, key)
		c.Stage = StagePrepare
	}
	return nil
}

// DropOldKeys keeps only the key that encrypts, once every Secret is
// written with it.
func (c *Config) DropOldKeys() {
	if !c.Enabled() {
		return
	}
	keys := c.keys(0)
	*keys = (*keys)[:1]
	rest := slices.DeleteFunc(slices.Clone(c.Providers[1:]), func(p apiserverv1.ProviderConfiguration) bool { return p.Identity == nil })
	c.Providers = append(c.Providers[:1:1], rest...)
}

// KeyNames describes the providers' keys in order, e.g. "AES-CBC
// aescbckey-2026...", and "Identity" for plain text.
func (c *Config) KeyNames() []string {
	var out []string
	for _, p := range c.Providers {
		kind, keys := describe(p)
		if p.Identity != nil {
			out = append(out, kind)
		}
		for _, k := range keys {
			out = append(out, kind+" "+k.Name)
		}
	}
	return out
}

// describe names a provider's kind and keys; "" for a kind regente does
// not write.
func describe(p apiserverv1.ProviderConfiguration) (string, []apiserverv1.Key) {
	switch {
	case p.AESCBC != nil && p.AESGCM == nil && p.Secretbox == nil && p.Identity == nil && p.KMS == nil:
		return "AES-CBC", p.AESCBC.Keys
	case p.Secretbox != nil && p.AESGCM == nil && p.AESCBC == nil && p.Identity == nil && p.KMS == nil:
		return "XSalsa20-Poly1305", p.Secretbox.Keys
	case p.Identity != nil && p.AESGCM == nil && p.AESCBC == nil && p.Secretbox == nil && p.KMS == nil:
		return "Identity", nil
	}
	return "", nil
}

// newKey is a random 32-byte key (what aescbc and secretbox both take),
// named after its kind and the time, which also orders the names.
func newKey(kind string, now time.Time) (apiserverv1.Key, error) {
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return apiserverv1.Key{}, fmt.Errorf("generate an encryption key: %w", err)
	}
	return apiserverv1.Key{Name: kind + "key-" + now.UTC().Format("2006-01-02T15-04-05Z"), Secret: base64.StdEncoding.EncodeToString(secret)}, nil
}
