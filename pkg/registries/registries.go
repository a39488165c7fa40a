package registries

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"

	"regente.io/regente/pkg/suggest"
)

// Wildcard is the registry key whose mirror and config apply to every
// registry that has no entry of its own.
const Wildcard = "*"

// Registries is a parsed and validated registries file.
type Registries struct {
	File    string            // where it was read from; "" when there is none
	Mirrors map[string]Mirror // by registry name (host[:port] or Wildcard)
	Configs map[string]Config // by host[:port] (or Wildcard)
}

// Mirror lists the endpoints tried, in order, before the registry's own.
type Mirror struct {
	Endpoints []string // absolute http(s) URLs
}

// Config is how to reach one host.
type Config struct {
	Auth *Auth
	TLS  *TLS
}

// Auth holds one of: Username and Password, Auth (base64 of
// "user:password"), or IdentityToken.
type Auth struct {
	Username      string
	Password      string
	Auth          string
	IdentityToken string
}

// TLS holds absolute paths (relative ones in the file are resolved against
// its directory).
type TLS struct {
	CAFile             string
	CertFile           string
	KeyFile            string
	InsecureSkipVerify bool
}

// Load reads and validates the registries file at path. A missing file is
// no error when optional (the default path), and yields an empty
// configuration.
func Load(path string, optional bool) (*Registries, error) {
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist) && optional:
		return &Registries{}, nil
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("--private-registry %s does not exist: create it, or drop the flag (the default file is read only when it exists)", path)
	case err != nil:
		return nil, fmt.Errorf("read registries file: %w", err)
	}
	return Parse(path, data)
}

// Parse validates data, the content of the registries file at file, and
// reports every problem at once, each naming the file and the key.
func Parse(file string, data []byte) (*Registries, error) {
	var doc any
	// Strict rejects duplicate keys, which YAML would otherwise let the
	// last one win silently.
	if err := yaml.UnmarshalStrict(data, &doc); err != nil {
		return nil, fmt.Errorf("registries file %s is not valid YAML: %w", file, err)
	}
	p := &parser{file: file, baseDir: filepath.Dir(file)}
	r := &Registries{File: file, Mirrors: map[string]Mirror{}, Configs: map[string]Config{}}
	top := p.mapping(nil, doc, "the top level", "mirrors", "configs")
	// Sorted, so that the errors come in a stable order.
	mirrors := p.entries([]string{"mirrors"}, top["mirrors"])
	for _, name := range slices.Sorted(maps.Keys(mirrors)) {
		r.Mirrors[name] = p.mirror([]string{"mirrors", name}, mirrors[name])
	}
	configs := p.entries([]string{"configs"}, top["configs"])
	for _, name := range slices.Sorted(maps.Keys(configs)) {
		r.Configs[name] = p.config([]string{"configs", name}, configs[name])
	}
	if err := errors.Join(p.errs...); err != nil {
		return nil, err
	}
	return r, nil
}

// parser collects every problem of one file.
type parser struct {
	file    string
	baseDir string
	errs    []error
}

func (p *parser) fail(path []string, format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf("registries file %s, key %s: %s", p.file, keyPath(path), fmt.Sprintf(format, args...)))
}

// keyPath renders a key path as a user would look for it, quoting the
// parts (host names) that hold dots: mirrors."registry.example.com:5000".endpoint.
func keyPath(path []string) string {
	parts := make([]string, len(path))
	for i, p := range path {
		if p == "" || strings.ContainsAny(p, ".:*\"[] ") {
			p = strconv.Quote(p)
		}
		parts[i] = p
	}
	return strings.Join(parts, ".")
}

// mapping checks that v is a mapping holding only known keys; nil (an empty
// entry) is an empty mapping.
func (p *parser) mapping(path []string, v any, what string, known ...string) map[string]any {
	if v == nil {
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		if len(path) == 0 {
			p.errs = append(p.errs, fmt.Errorf("registries file %s: %s must be a mapping with the keys %s, not a %s", p.file, what, strings.Join(known, " and "), kindOf(v)))
		} else {
			p.fail(path, "must be a mapping with the keys %s, not a %s", strings.Join(known, ", "), kindOf(v))
		}
		return nil
	}
	for _, key := range slices.Sorted(maps.Keys(m)) {
		if slices.Contains(known, key) {
			continue
		}
		hint := ""
		if s := suggest.Closest(strings.ToLower(key), known); s != "" {
			hint = fmt.Sprintf("did you mean %q? ", s)
		}
		p.errs = append(p.errs, fmt.Errorf("registries file %s: unknown key %s: %sthe keys of %s are %s",
			p.file, keyPath(append(slices.Clone(path), key)), hint, what, strings.Join(known, ", ")))
	}
	return m
}

// entries checks the registry names of mirrors or configs.
func (p *parser) entries(path []string, v any) map[string]any {
	if v == nil {
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		p.fail(path, "must be a mapping of registry host names to settings, not a %s", kindOf(v))
		return nil
	}
	valid := map[string]any{}
	for _, name := range slices.Sorted(maps.Keys(m)) {
		entry := m[name]
		if err := checkRegistryName(name); err != nil {
			p.fail(append(slices.Clone(path), name), "%v", err)
			continue
		}
		valid[name] = entry
	}
	return valid
}

func (p *parser) mirror(path []string, v any) Mirror {
	m := p.mapping(path, v, "a mirror", "endpoint", "rewrite")
	var mirror Mirror
	if rw, ok := m["rewrite"]; ok && rw != nil {
		// Upstream containerd's hosts.toml cannot rename repositories (the
		// rewrite k3s offers lives in its own containerd fork); ignoring it
		// would pull other names than the user meant.
		p.fail(append(slices.Clone(path), "rewrite"), "containerd's hosts.toml cannot rewrite repository names: push the images to the mirror under the same names, and remove the rewrite")
	}
	epPath := append(slices.Clone(path), "endpoint")
	switch eps := m["endpoint"].(type) {
	case nil:
	case []any:
		for i, e := range eps {
			s, ok := e.(string)
			if !ok {
				p.fail(epPath, "item %d is a %s: give URLs as strings, e.g. https://registry.example.com:5000", i+1, kindOf(e))
				continue
			}
			if err := checkEndpoint(s); err != nil {
				p.fail(epPath, "item %d %q %v", i+1, s, err)
				continue
			}
			mirror.Endpoints = append(mirror.Endpoints, s)
		}
	default:
		p.fail(epPath, "must be a list of URLs, e.g. endpoint: [\"https://registry.example.com:5000\"], not a %s", kindOf(eps))
	}
	return mirror
}

func (p *parser) config(path []string, v any) Config {
	m := p.mapping(path, v, "a config", "auth", "tls")
	var c Config
	if v, ok := m["auth"]; ok && v != nil {
		c.Auth = p.auth(append(slices.Clone(path), "auth"), v)
	}
	if v, ok := m["tls"]; ok && v != nil {
		c.TLS = p.tls(append(slices.Clone(path), "tls"), v)
	}
	return c
}

func (p *parser) auth(path []string, v any) *Auth {
	m := p.mapping(path, v, "auth", "username", "password", "auth", "identitytoken")
	a := &Auth{
		Username:      p.str(path, m, "username"),
		Password:      p.str(path, m, "password"),
		Auth:          p.str(path, m, "auth"),
		IdentityToken: p.str(path, m, "identitytoken"),
	}
	methods := 0
	for _, set := range []bool{a.Username != "" || a.Password != "", a.Auth != "", a.IdentityToken != ""} {
		if set {
			methods++
		}
	}
	switch {
	case path[1] == Wildcard:
		// containerd looks credentials up by the exact host a request
		// goes to; a catch-all would need a host list we do not have.
		p.fail(path, "credentials cannot apply to every registry: give them under the host[:port] they are for")
	case methods == 0:
		p.fail(path, "is empty: give username and password, auth, or identitytoken")
	case methods > 1:
		p.fail(path, "give only one of: username and password, auth, identitytoken")
	case (a.Username == "") != (a.Password == ""):
		p.fail(path, "username and password go together: give both")
	case a.Auth != "":
		b, err := base64.StdEncoding.DecodeString(a.Auth)
		if err != nil || !strings.Contains(string(b), ":") {
			p.fail(append(slices.Clone(path), "auth"), "must be the base64 of \"username:password\", as in a docker config.json")
		}
	}
	return a
}

func (p *parser) tls(path []string, v any) *TLS {
	m := p.mapping(path, v, "tls", "ca_file", "cert_file", "key_file", "insecure_skip_verify")
	t := &TLS{
		CAFile:   p.path(path, m, "ca_file"),
		CertFile: p.path(path, m, "cert_file"),
		KeyFile:  p.path(path, m, "key_file"),
	}
	if v, ok := m["insecure_skip_verify"]; ok && v != nil {
		b, isBool := v.(bool)
		if !isBool {
			p.fail(append(slices.Clone(path), "insecure_skip_verify"), "must be true or false, not a %s", kindOf(v))
		}
		t.InsecureSkipVerify = b
	}
	if t.CAFile != "" {
		data, err := os.ReadFile(t.CAFile)
		switch {
		case err != nil:
			p.fail(append(slices.Clone(path), "ca_file"), "%v: point it at the PEM file of the CA that signed the registry's certificate", err)
		case !x509.NewCertPool().AppendCertsFromPEM(data):
			p.fail(append(slices.Clone(path), "ca_file"), "%s holds no PEM certificate: point it at the CA that signed the registry's certificate", t.CAFile)
		}
	}
	switch {
	case (t.CertFile == "") != (t.KeyFile == ""):
		p.fail(path, "cert_file and key_file go together: give both for a client certificate, or neither")
	case t.CertFile != "":
		if _, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile); err != nil {
			p.fail(path, "client certificate %s with key %s: %v", t.CertFile, t.KeyFile, err)
		}
	}
	return t
}

// str reads an optional string key of m.
func (p *parser) str(path []string, m map[string]any, key string) string {
	v, ok := m[key]
	if !ok || v == nil {
		return ""
	}
	s, ok := v.(string)
	if !ok {
		p.fail(append(slices.Clone(path), key), "must be a string, not a %s (quote it)", kindOf(v))
	}
	return s
}

// path reads an optional file path key of m, made absolute against the
// file's directory.
func (p *parser) path(path []string, m map[string]any, key string) string {
	s := p.str(path, m, key)
	if s == "" || filepath.IsAbs(s) {
		return s
	}
	return filepath.Join(p.baseDir, s)
}

// checkRegistryName accepts host[:port] or the wildcard.
func checkRegistryName(name string) error {
	if name == Wildcard {
		return nil
	}
	if strings.Contains(name, "://") || strings.Contains(name, "/") {
		return fmt.Errorf("a registry key is a host[:port] without scheme or path, e.g. registry.example.com:5000 (the URL goes under endpoint)")
	}
	host, port := name, ""
	if h, p, err := net.SplitHostPort(name); err == nil {
		host, port = h, p
	}
	if n, err := strconv.Atoi(port); port != "" && (err != nil || n < 1 || n > 65535) {
		return fmt.Errorf("port %q is not a number between 1 and 65535", port)
	}
	// "." and ".." would put the file for the host outside its own dir.
	if host == "" || host == "." || host == ".." || strings.ContainsAny(host, " \t\"'\\*") {
		return fmt.Errorf("%q is not a host[:port], e.g. registry.example.com:5000, or \"*\" for every registry", name)
	}
	return nil
}

// checkEndpoint accepts absolute http(s) URLs; its message follows the
// endpoint's position and value.
func checkEndpoint(s string) error {
	u, err := url.Parse(s)
	switch {
	case err != nil || u.Host == "":
		return errors.New("is not a URL: give one such as https://registry.example.com:5000")
	case u.Scheme != "https" && u.Scheme != "http":
		return fmt.Errorf("has the scheme %q: use https:// (or http:// for a registry without TLS)", u.Scheme)
	case u.User != nil || u.RawQuery != "" || u.Fragment != "":
		return errors.New("must not hold credentials, a query or a fragment: put credentials under configs.<host>.auth")
	case strings.ContainsAny(s, "\"\\"):
		return errors.New("holds a quote or a backslash")
	}
	return nil
}

func kindOf(v any) string {
	switch v.(type) {
	case []any:
		return "list"
	case map[string]any:
		return "mapping"
	case string:
		return "string"
	case bool:
		return "boolean"
	case float64:
		return "number"
	}
	return "single value"
}
