package certs

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"regente.io/regente/pkg/atomicfile"
)

// RotatedCAs are the CAs RotateCA replaces. The etcd CA is left alone
// while it is valid: etcd peers on other servers check each other with it,
// and they are not restarted together.
var RotatedCAs = []string{"server-ca", "client-ca", "request-header-ca"}

// crossFile holds a CA's certificate signed by the CA it replaced.
func crossFile(dir, name string) string { return filepath.Join(dir, name+"-cross.crt") }

// previousFile holds the replaced CA's certificate file exactly as it
// was, so the hash that existing join tokens pin can still be recognised.
func previousFile(dir, name string) string { return filepath.Join(dir, name+"-previous.crt") }

// loadCross returns the cross-signed certificate of the CA cert, if there
// is one that is still valid and belongs to cert; anything else is no
// transition in progress.
func loadCross(dir, name string, cert *x509.Certificate, now time.Time) (*x509.Certificate, error) {
	cross, err := LoadCertificate(crossFile(dir, name))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("CA %s: %w; remove the file to end the CA transition", name, err)
	case !cross.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(cert.PublicKey),
		cross.Subject.String() != cert.Subject.String(),
		!now.Before(cross.NotAfter):
		return nil, nil
	}
	return cross, nil
}

// CARotation says what RotateCA did.
type CARotation struct {
	Backup  string   // the copy of the TLS dir from before
	Rotated []string // CA names
	// Expired are the rotated CAs that had already ended: nothing can
	// chain to them any more, so there is no transition for them and
	// every node must join again with the new token.
	Expired []string
}

// RotateCA replaces the server, client and request-header CAs in dir with
// new ones and keeps the cluster working through the change:
//
//   - each <ca>.crt becomes a bundle of the new CA and the old one, so
//     every verifier that reads it (the apiserver's client CA, the
//     kubelets' server CA, pods' ca.crt) trusts credentials of either;
//   - <ca>-cross.crt is the new CA signed by the old one; Ensure appends it
//     to every leaf the new CA signs, so nodes that still trust only the
//     old CA (agents not yet restarted) verify the new serving and
//     kubelet-client certificates;
//   - <ca>-previous.crt is the old certificate file, byte for byte: its
//     hash is the one existing join tokens pin.
//
// The whole dir is copied to a backup first. The server must be stopped:
// Ensure re-issues every leaf from the new CAs at its next start.
func RotateCA(dir string, now time.Time) (*CARotation, error) {
	backup, err := backupDir(dir, now)
	if err != nil {
		return nil, err
	}
	e := &ensurer{dir: dir, now: now, allowExpiredCA: true}
	var files []atomicfile.File
	var expired []string
	names := slices.Clone(RotatedCAs)
	// The etcd CA is replaced only once it has ended, when no peer can
	// use it anyway.
	if etcdCA, err := LoadCertificate(pair(dir, "etcd-ca").Cert); err == nil && !now.Before(etcdCA.NotAfter) {
		names = append(names, "etcd-ca")
	}
	for _, name := range names {
		old, err := e.ensureCA(name)
		if err != nil {
			return nil, err
		}
		oldFile, err := os.ReadFile(pair(dir, name).Cert)
		if err != nil {
			return nil, err
		}
		kp := pair(dir, name)
		key, kf, err := newKey(kp.Key)
		if err != nil {
			return nil, err
		}
		tmpl := caTemplate(name, now)
		cert, err := sign(name, tmpl, &key.PublicKey, nil, key)
		if err != nil {
			return nil, err
		}
		if !now.Before(old.cert.NotAfter) {
			// Nothing verifies against an ended CA: a plain replacement,
			// and no file of a transition left behind.
			expired = append(expired, name)
			for _, stale := range []string{previousFile(dir, name), crossFile(dir, name)} {
				if err := os.Remove(stale); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return nil, err
				}
			}
			files = append(files, kf, certFile(kp.Cert, cert))
			continue
		}
		// The cross-signed certificate names the new CA (subject and key
		// identifier) so that it stands in for it in a chain, and is
		// issued by the old one; it cannot outlive the old CA.
		crossTmpl := caTemplate(name, now)
		crossTmpl.Subject = cert.Subject
		crossTmpl.SubjectKeyId = cert.SubjectKeyId
		crossTmpl.NotAfter = minTime(old.cert.NotAfter, cert.NotAfter)
		cross, err := sign(name+" (cross-signed)", crossTmpl, &key.PublicKey, old.cert, old.key)
		if err != nil {
			return nil, err
		}
		// The new key is written before the bundle that starts with its
		// certificate; the backup holds the old pair if this is cut short.
		bundle := append(certPEM(cert), certPEM(old.cert)...)
		files = append(files,
			atomicfile.File{Path: previousFile(dir, name), Data: oldFile, Mode: 0o644},
			certFile(crossFile(dir, name), cross),
			kf,
			atomicfile.File{Path: kp.Cert, Data: bundle, Mode: 0o644},
		)
	}
	if err := atomicfile.Write(files...); err != nil {
		return nil, fmt.Errorf("write the new CAs (restore %s if this was cut short): %w", backup, err)
	}
	return &CARotation{Backup: backup, Rotated: names, Expired: expired}, nil
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// RotateLeaves moves the leaf certificates and keys of dir (every pair
// that is not a CA and not the service-account key) into a backup dir,
// or only those of them whose name is in only. The next start issues new
// ones with new keys. It returns the names moved and the backup dir.
func RotateLeaves(dir string, only []string, now time.Time) ([]string, string, error) {
	infos, err := Inventory(dir)
	if err != nil {
		return nil, "", err
	}
	var names []string
	for _, info := range infos {
		name := strings.TrimSuffix(filepath.Base(info.File), ".crt")
		if info.IsCA || info.Derived {
			continue
		}
		if len(only) == 0 || slices.Contains(only, name) {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return nil, "", nil
	}
	backup := filepath.Join(filepath.Dir(dir), filepath.Base(dir)+"-backup-"+now.UTC().Format("20060102T150405Z"))
	if err := os.MkdirAll(backup, 0o700); err != nil {
		return nil, "", fmt.Errorf("create backup dir: %w", err)
	}
	for _, name := range names {
		for _, ext := range []string{".crt", ".key"} {
			from := filepath.Join(dir, name+ext)
			if err := os.Rename(from, filepath.Join(backup, name+ext)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return nil, "", fmt.Errorf("move %s aside: %w", from, err)
			}
		}
	}
	return names, backup, nil
}

// backupDir copies the regular files of dir into <dir>-backup-<time>,
// 0700, keeping their modes.
func backupDir(dir string, now time.Time) (string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", dir, err)
	}
	backup := filepath.Join(filepath.Dir(dir), filepath.Base(dir)+"-backup-"+now.UTC().Format("20060102T150405Z"))
	var files []atomicfile.File
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if err != nil {
			return "", err
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return "", err
		}
		files = append(files, atomicfile.File{Path: filepath.Join(backup, e.Name()), Data: data, Mode: info.Mode().Perm()})
	}
	if err := os.MkdirAll(backup, 0o700); err != nil {
		return "", fmt.Errorf("create backup dir: %w", err)
	}
	if err := atomicfile.Write(files...); err != nil {
		return "", fmt.Errorf("back up %s: %w", dir, err)
	}
	return backup, nil
}

// CertInfo describes one certificate file.
type CertInfo struct {
	File     string
	Subject  string // common name
	Issuer   string // common name
	IsCA     bool
	NotAfter time.Time
	// Bundled counts the further CA certificates in the file (a CA
	// transition in progress).
	Bundled int
	// Derived marks files that are not certificates of their own: the
	// old CA and the cross-signed one a transition keeps (they end with
	// the old CA, and need nothing then), and the signers' copies of the
	// current CAs.
	Derived bool
}

// Inventory lists the certificate files (*.crt) directly in each dir that
// exists, sorted by path.
func Inventory(dirs ...string) ([]CertInfo, error) {
	var out []CertInfo
	for _, dir := range dirs {
		paths, err := filepath.Glob(filepath.Join(dir, "*.crt"))
		if err != nil {
			return nil, err
		}
		for _, path := range paths {
			b, err := os.ReadFile(path)
			if err != nil {
				return nil, err
			}
			var certs []*x509.Certificate
			for rest := b; ; {
				var block *pem.Block
				if block, rest = pem.Decode(rest); block == nil {
					break
				}
				if block.Type != "CERTIFICATE" {
					continue
				}
				c, err := x509.ParseCertificate(block.Bytes)
				if err != nil {
					return nil, fmt.Errorf("parse certificate %s: %w", path, err)
				}
				certs = append(certs, c)
			}
			if len(certs) == 0 {
				return nil, fmt.Errorf("%s holds no certificate: restore it from a backup, or remove it to have a new one issued at the next start", path)
			}
			c := certs[0]
			base := strings.TrimSuffix(filepath.Base(path), ".crt")
			info := CertInfo{File: path, Subject: c.Subject.CommonName, Issuer: c.Issuer.CommonName, IsCA: c.IsCA, NotAfter: c.NotAfter,
				Derived: strings.HasSuffix(base, "-previous") || strings.HasSuffix(base, "-cross") || strings.HasSuffix(base, "-signer")}
			if c.IsCA {
				info.Bundled = len(certs) - 1
			}
			out = append(out, info)
		}
	}
	slices.SortFunc(out, func(a, b CertInfo) int { return strings.Compare(a.File, b.File) })
	return out, nil
}

// Expiring returns the certificates of dirs that end within the given
// time of now, soonest first, leaving out Derived files.
func Expiring(now time.Time, within time.Duration, dirs ...string) ([]CertInfo, error) {
	infos, err := Inventory(dirs...)
	if err != nil {
		return nil, err
	}
	var out []CertInfo
	for _, info := range infos {
		if !info.Derived && info.NotAfter.Sub(now) <= within {
			out = append(out, info)
		}
	}
	slices.SortFunc(out, func(a, b CertInfo) int { return a.NotAfter.Compare(b.NotAfter) })
	return out, nil
}

// LeafRotation is what RotateNodeLeaves moved out of one TLS dir.
type LeafRotation struct {
	Dir, Backup string
	Names       []string
}

// RotateNodeLeaves runs RotateLeaves on each of dirs that exists (a
// server's and its node's TLS dirs), once every name in only is known to
// be a leaf certificate in one of them, so that a typo moves nothing.
func RotateNodeLeaves(dirs, only []string, now time.Time) ([]LeafRotation, error) {
	dirs = existingDirs(dirs)
	infos, err := Inventory(dirs...)
	if err != nil {
		return nil, err
	}
	for _, name := range only {
		if !slices.ContainsFunc(infos, func(c CertInfo) bool { return !c.IsCA && filepath.Base(c.File) == name+".crt" }) {
			return nil, fmt.Errorf("--service %q is not a leaf certificate here: name a file `regente certificate check` lists, without .crt (CAs are replaced with rotate-ca)", name)
		}
	}
	var done []LeafRotation
	for _, dir := range dirs {
		names, backup, err := RotateLeaves(dir, only, now)
		if err != nil {
			return done, err
		}
		if len(names) > 0 {
			done = append(done, LeafRotation{Dir: dir, Backup: backup, Names: names})
		}
	}
	return done, nil
}

// existingDirs keeps the dirs that exist: an agent has no server TLS dir,
// a server with --disable-agent no node one.
func existingDirs(dirs []string) []string {
	var out []string
	for _, d := range dirs {
		if fi, err := os.Stat(d); err == nil && fi.IsDir() {
			out = append(out, d)
		}
	}
	return out
}

// ExpiringSoon is when a certificate counts as expiring: `regente
// certificate check` flags it, and the server warns on its node.
const ExpiringSoon = 30 * 24 * time.Hour

// Status says where c stands at now, as `regente certificate check` shows
// it; expired is set for a certificate that needs replacing now.
func (c CertInfo) Status(now time.Time) (status string, expired bool) {
	left := c.NotAfter.Sub(now)
	status = "ok"
	switch {
	case c.Derived:
		status = "kept for a CA transition, or a signer's copy"
	case left <= 0:
		status, expired = "EXPIRED", true
	case left <= ExpiringSoon:
		status = "expiring soon"
	case !c.IsCA && left <= renewWithin:
		status = "renewed at next start"
	}
	if c.Bundled > 0 {
		status += fmt.Sprintf(" (+%d previous CA still trusted)", c.Bundled)
	}
	return status, expired
}
