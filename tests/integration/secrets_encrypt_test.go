//go:build integration

package integration

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// TestSecretsEncrypt runs the whole secrets-encrypt cycle on a running
// server (enable, reencrypt, prepare, rotate, reencrypt, rotate-keys,
// disable, reencrypt) while a writer keeps creating and reading Secrets,
// and reads the SQLite rows after each step: what the API server stores is
// ciphertext under the key the step says, or plain text once disabled, and
// every Secret written before, during and after stays readable.
func TestSecretsEncrypt(t *testing.T) {
	bin := requirements(t)
	s := newServer(t, bin)
	s.start()
	client := s.client()
	ctx := context.Background()
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(s.dataDir, "server", "db", "state.db")+"?mode=ro&_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	encrypt := func(args ...string) string {
		t.Helper()
		code, out := runBinary(t, bin, append([]string{"secrets-encrypt", "--data-dir", s.dataDir}, args...)...)
		if code != 0 {
			t.Fatalf("secrets-encrypt %v: exit %d\n%s", args, code, out)
		}
		return out
	}
	refused := func(want string, args ...string) {
		t.Helper()
		code, out := runBinary(t, bin, append([]string{"secrets-encrypt", "--data-dir", s.dataDir}, args...)...)
		if code == 0 || !strings.Contains(out, want) {
			t.Errorf("secrets-encrypt %v: exit %d, want a refusal saying %q:\n%s", args, code, want, out)
		}
	}

	for i := range 20 {
		createSecret(t, client, fmt.Sprintf("before-%d", i))
	}
	expectContains(t, "status", encrypt("status"), "Encryption Status: Disabled", "Current Rotation Stage: start", "API Server: uses the current configuration", "Identity")
	checkRows(t, db, "before-", "")
	refused("run `regente secrets-encrypt enable` before prepare", "prepare")
	refused("give one subcommand", "shred")

	// A writer runs through every step.
	var written atomic.Int64
	writerCtx, stopWriter := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var writerErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; writerCtx.Err() == nil; i++ {
			name := fmt.Sprintf("during-%d", i)
			sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name}, StringData: map[string]string{"v": marker(name)}}
			if _, err := client.CoreV1().Secrets("default").Create(writerCtx, sec, metav1.CreateOptions{}); err != nil {
				if writerCtx.Err() == nil {
					writerErr = fmt.Errorf("create %s: %w", name, err)
				}
				return
			}
			written.Add(1)
			got, err := client.CoreV1().Secrets("default").Get(writerCtx, name, metav1.GetOptions{})
			if err != nil || string(got.Data["v"]) != marker(name) {
				if writerCtx.Err() == nil {
					writerErr = fmt.Errorf("read back %s: %v %q", name, err, got.Data["v"])
				}
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()

	expectContains(t, "enable", encrypt("enable"), "enabled")
	key1 := currentKey(t, encrypt("status"))
	createSecret(t, client, "after-enable")
	checkRows(t, db, "after-enable", key1)
	checkRows(t, db, "before-", "") // not yet rewritten
	expectContains(t, "reencrypt", encrypt("reencrypt"), "Rewrote")
	checkRows(t, db, "before-", key1)
	expectContains(t, "status", encrypt("status"), "Encryption Status: Enabled", "Current Rotation Stage: reencrypt_finished")

	encrypt("prepare")
	refused("finish it", "prepare")
	st := encrypt("status")
	expectContains(t, "status after prepare", st, "Current Rotation Stage: prepare")
	if currentKey(t, st) != key1 {
		t.Errorf("prepare must not change the key that encrypts:\n%s", st)
	}
	encrypt("rotate")
	key2 := currentKey(t, encrypt("status"))
	if key2 == key1 {
		t.Fatalf("rotate kept key %s", key1)
	}
	createSecret(t, client, "after-rotate")
	checkRows(t, db, "after-rotate", key2)
	out := encrypt("reencrypt")
	if strings.Contains(out, key1) {
		t.Errorf("the old key %s is still in use after reencrypt:\n%s", key1, out)
	}
	checkRows(t, db, "before-", key2)
	checkRows(t, db, "after-enable", key2)

	encrypt("rotate-keys")
	key3 := currentKey(t, encrypt("status"))
	if key3 == key2 {
		t.Fatalf("rotate-keys kept key %s", key2)
	}
	checkRows(t, db, "before-", key3)

	stopWriter()
	wg.Wait()
	if writerErr != nil {
		t.Fatalf("the writer failed during the cycle: %v", writerErr)
	}
	if written.Load() == 0 {
		t.Fatal("the writer wrote nothing")
	}
	checkRows(t, db, "during-", key3)
	readAll(t, client)

	// Back to plain text, and everything survives a restart.
	encrypt("disable")
	encrypt("reencrypt")
	checkRows(t, db, "before-", "")
	checkRows(t, db, "during-", "")
	if code, took := s.stop(); code != 0 {
		t.Fatalf("stop: exit %d after %s", code, took)
	}
	refused("the server must run", "reencrypt")
	s.start()
	readAll(t, s.client())
	t.Logf("%d Secrets written during the cycle, all readable", written.Load())
}

// TestSecretsEncryptionFromTheFirstStart starts a server with
// --secrets-encryption and secretbox: its Secrets are never stored in
// plain text; a bad provider is refused.
func TestSecretsEncryptionFromTheFirstStart(t *testing.T) {
	bin := requirements(t)
	bad := newServer(t, bin, "--secrets-encryption", "--secrets-encryption-provider=rot13")
	if code, out := runBinary(t, bin, bad.args...); code == 0 || !strings.Contains(out, `--secrets-encryption-provider "rot13"`) {
		t.Errorf("provider rot13: exit %d:\n%s", code, tail(out))
	}
	s := newServer(t, bin, "--secrets-encryption", "--secrets-encryption-provider=secretbox")
	s.start()
	createSecret(t, s.client(), "first")
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(s.dataDir, "server", "db", "state.db")+"?mode=ro&_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	code, out := runBinary(t, bin, "secrets-encrypt", "status", "--data-dir", s.dataDir)
	if code != 0 || !strings.Contains(out, "XSalsa20-Poly1305 secretboxkey-") {
		t.Fatalf("status: exit %d\n%s", code, out)
	}
	checkRows(t, db, "first", "secretbox:v1:"+currentKey(t, out))
	// Secrets the server writes itself are encrypted too: no Secret row
	// anywhere holds plain text.
	rows := latestSecretRows(t, db, "/registry/secrets/%")
	for name, value := range rows {
		if !bytes.HasPrefix(value, []byte("k8s:enc:secretbox:v1:")) {
			t.Errorf("%s is stored as %q...", name, value[:min(len(value), 24)])
		}
	}
	if len(rows) == 0 {
		t.Error("no Secret rows found")
	}
}

// latestSecretRows reads the value of the newest row of every live key
// LIKE pattern from kine's table.
func latestSecretRows(t *testing.T, db *sql.DB, pattern string) map[string][]byte {
	t.Helper()
	rows, err := db.Query(`SELECT name, value FROM kine k WHERE name LIKE ? AND id = (SELECT MAX(id) FROM kine WHERE name = k.name) AND deleted = 0`, pattern)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string][]byte{}
	for rows.Next() {
		var name string
		var value []byte
		if err := rows.Scan(&name, &value); err != nil {
			t.Fatal(err)
		}
		out[name] = value
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func marker(name string) string { return "plaintext-marker-" + name }

func createSecret(t *testing.T, client kubernetes.Interface, name string) {
	t.Helper()
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name}, StringData: map[string]string{"v": marker(name)}}
	if _, err := client.CoreV1().Secrets("default").Create(context.Background(), sec, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// readAll reads every Secret of the default namespace back and checks its
// value.
func readAll(t *testing.T, client kubernetes.Interface) {
	t.Helper()
	list, err := client.CoreV1().Secrets("default").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range list.Items {
		if got := string(s.Data["v"]); got != marker(s.Name) {
			t.Errorf("Secret %s reads %q", s.Name, got)
		}
	}
	if len(list.Items) < 22 {
		t.Errorf("only %d Secrets", len(list.Items))
	}
}

var activeKey = regexp.MustCompile(`(?m)^  (?:AES-CBC|XSalsa20-Poly1305) (\S+)$`)

// currentKey is the first key status lists: the one that encrypts.
func currentKey(t *testing.T, status string) string {
	t.Helper()
	m := activeKey.FindStringSubmatch(status)
	if m == nil {
		t.Fatalf("no key in status:\n%s", status)
	}
	return m[1]
}

// checkRows reads the newest row of every Secret in default whose name
// starts with prefix from the SQLite file: with key "", each must hold the
// plain text marker; else each must be ciphertext under that key
// ("aescbc:v1:<key>:" unless key names its provider) with no marker.
func checkRows(t *testing.T, db *sql.DB, prefix, key string) {
	t.Helper()
	if key != "" && !strings.Contains(key, ":v1:") {
		key = "aescbc:v1:" + key
	}
	rows := latestSecretRows(t, db, "/registry/secrets/default/"+prefix+"%")
	n := len(rows)
	for name, value := range rows {
		secret := strings.TrimPrefix(name, "/registry/secrets/default/")
		plain := bytes.Contains(value, []byte(marker(secret)))
		switch {
		case key == "" && !plain:
			t.Errorf("%s: want plain text, stored as %q...", name, value[:min(len(value), 40)])
		case key != "" && (plain || !bytes.HasPrefix(value, []byte("k8s:enc:"+key+":"))):
			t.Errorf("%s: want ciphertext under %s, stored as %q...", name, key, value[:min(len(value), 40)])
		}
	}
	if n == 0 {
		t.Errorf("no rows for Secrets %s*", prefix)
	}
}
