package certexpiry

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func writeCert(t *testing.T, path, cn string, notAfter time.Time) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: notAfter.Add(-365 * 24 * time.Hour), NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestCheckWarnsOncePerDayAboutCertificatesEndingWithin30Days(t *testing.T) {
	now := time.Date(2027, 3, 1, 12, 0, 0, 0, time.UTC)
	dir := t.TempDir()
	writeCert(t, filepath.Join(dir, "soon.crt"), "soon", now.Add(10*24*time.Hour))
	writeCert(t, filepath.Join(dir, "later.crt"), "later", now.Add(60*24*time.Hour))
	writeCert(t, filepath.Join(dir, "gone.crt"), "gone", now.Add(-24*time.Hour))
	client := fake.NewClientset()
	cfg := Config{NodeName: "n1", Dirs: []string{dir}, Now: func() time.Time { return now }}
	for range 2 { // the second run, the same day, adds nothing
		if err := Check(context.Background(), client, cfg); err != nil {
			t.Fatal(err)
		}
	}
	events, err := client.CoreV1().Events(metav1.NamespaceDefault).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(events.Items) != 2 {
		t.Fatalf("want events for soon.crt and gone.crt, got %d: %+v", len(events.Items), events.Items)
	}
	var msgs []string
	for _, e := range events.Items {
		if e.Type != "Warning" || e.Reason != Reason || e.InvolvedObject.Kind != "Node" || e.InvolvedObject.Name != "n1" {
			t.Errorf("event %s: type %s reason %s about %s/%s", e.Name, e.Type, e.Reason, e.InvolvedObject.Kind, e.InvolvedObject.Name)
		}
		msgs = append(msgs, e.Message)
	}
	all := strings.Join(msgs, "\n")
	for _, want := range []string{"soon.crt (soon) expires on 2027-03-11T12:00:00Z, in 10 days", "gone.crt (gone) expired on", "regente certificate rotate"} {
		if !strings.Contains(all, want) {
			t.Errorf("messages lack %q:\n%s", want, all)
		}
	}
	cfg.Now = func() time.Time { return now.Add(24 * time.Hour) }
	if err := Check(context.Background(), client, cfg); err != nil {
		t.Fatal(err)
	}
	events, _ = client.CoreV1().Events(metav1.NamespaceDefault).List(context.Background(), metav1.ListOptions{})
	if len(events.Items) != 4 {
		t.Errorf("a new day warns again: want 4 events, got %d", len(events.Items))
	}
}
