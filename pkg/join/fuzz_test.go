package join

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"k8s.io/client-go/kubernetes/fake"

	"regente.io/regente/pkg/certs"
)

// FuzzParseToken checks what any string given as --token, --token-file or
// a join request's token gets: a token that parses reads back as itself
// from its own String(), and an error never shows the secret.
func FuzzParseToken(f *testing.F) {
	hash := strings.Repeat("ab", 32)
	for _, seed := range []string{
		"K10" + hash + "::server:s3cret",
		"K10" + hash + "::node:s3cret",
		"K10" + hash + "::abcdef.0123456789abcdef",
		"abcdef.0123456789abcdef",
		"plain-secret",
		"K10" + hash + "server:topsecret",
		"K10abc::server:topsecret",
		"server:",
		" node:a:b \n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		tok, err := ParseToken(in)
		if err != nil {
			secret := in
			if _, cred, ok := strings.Cut(in, "::"); ok {
				secret = cred
			}
			if _, s, ok := strings.Cut(secret, ":"); ok {
				secret = s
			}
			secret = strings.TrimSpace(secret)
			if len(secret) >= 8 && strings.Contains(err.Error(), secret) {
				t.Errorf("ParseToken(%q) error shows the secret: %v", in, err)
			}
			return
		}
		if tok.Secret == "" {
			t.Errorf("ParseToken(%q) = %+v: accepted an empty secret", in, tok)
		}
		again, err := ParseToken(tok.String())
		if err != nil || again != tok {
			t.Errorf("ParseToken(%q) = %+v, but its String() %q parses as %+v, %v", in, tok, tok.String(), again, err)
		}
	})
}

// FuzzJoinRequest posts any body to the join endpoint, as anyone on the
// network can. Whatever it holds, the answer is a refusal with a 4xx
// status unless the token is right, and a certificate it issues names the
// node the request names, whatever its CSR asked for.
func FuzzJoinRequest(f *testing.F) {
	dir := f.TempDir()
	caDir := filepath.Join(dir, "tls")
	if _, err := certs.Ensure(certs.Options{Dir: caDir, Hostname: "h", ClusterDomain: "cluster.local"}); err != nil {
		f.Fatal(err)
	}
	signer, err := certs.NewSigner(caDir)
	if err != nil {
		f.Fatal(err)
	}
	csrs, err := certs.NodeCSRs(filepath.Join(dir, "node"))
	if err != nil {
		f.Fatal(err)
	}
	valid := Request{Token: "server:srv-secret", NodeName: "n1", NodePassword: "pw", NodeIPs: []string{"10.0.0.7"}, CSRs: map[certs.NodeRole]string{}}
	for role, csr := range csrs {
		valid.CSRs[role] = string(csr)
	}
	for _, r := range []Request{
		valid,
		{Token: "node:agent-secret", NodeName: "n2", NodePassword: "pw", CSRs: valid.CSRs},
		{Token: "server:wrong", NodeName: "n1", NodePassword: "pw", CSRs: valid.CSRs},
		{Token: "server:srv-secret", NodeName: "N_1", NodePassword: "pw", CSRs: valid.CSRs},
		{Token: "server:srv-secret", NodeName: strings.Repeat("a", 240), NodePassword: "pw", CSRs: valid.CSRs},
		{Token: "server:srv-secret", NodeName: "n1", NodePassword: "pw", NodeIPs: []string{"not-an-ip"}, CSRs: valid.CSRs},
		{Token: "server:srv-secret", NodeName: "n1", NodePassword: "pw", CSRs: map[certs.NodeRole]string{certs.RoleKubeletClient: "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"}},
	} {
		b, _ := json.Marshal(r)
		f.Add(b)
	}
	f.Add([]byte(`{"token": 1}`))
	f.Add([]byte(`[`))

	// One API for every case, as a real server has: a node name a case
	// registered stays registered, with its password.
	client := fake.NewClientset()
	tokens := loadedTokens(f, "srv-secret", "agent-secret")
	f.Fuzz(func(t *testing.T, body []byte) {
		s := &Server{client: client, signer: signer, cfg: ServerConfig{Tokens: tokens}}
		s.once.Do(func() {}) // connected: the fake client and the signer are set
		w := httptest.NewRecorder()
		s.join(w, httptest.NewRequest(http.MethodPost, PathJoin, bytes.NewReader(body)))
		var req Request
		_ = json.Unmarshal(body, &req)
		tok, err := ParseToken(req.Token)
		accepted := err == nil && (tok.Kind == KindServer && tok.Secret == "srv-secret" || tok.Kind == KindNode && tok.Secret == "agent-secret")
		switch {
		case w.Code >= 500:
			t.Fatalf("status %d for a bad request: %s", w.Code, w.Body)
		case w.Code != http.StatusOK && (w.Code < 400 || w.Header().Get(RefusedHeader) != "true"):
			t.Fatalf("status %d without %s: %s", w.Code, RefusedHeader, w.Body)
		case w.Code == http.StatusOK && !accepted:
			t.Fatalf("joined with the token %q", req.Token)
		case w.Code == http.StatusOK && len(NodePasswordSecret(req.NodeName)) > 253:
			t.Fatalf("joined as %q, whose node password Secret cannot be named", req.NodeName)
		case w.Code == http.StatusOK:
			checkIssued(t, w.Body.Bytes(), req.NodeName)
		}
	})
}

// checkIssued checks that the kubelet's client certificate in a join
// response names nodeName and nothing else.
func checkIssued(t *testing.T, body []byte, nodeName string) {
	t.Helper()
	var resp Response
	if err := json.Unmarshal(body, &resp); err != nil {
		t.Fatalf("join response: %v", err)
	}
	block, _ := pem.Decode([]byte(resp.Certificates[certs.RoleKubeletClient]))
	if block == nil {
		t.Fatalf("no kubelet client certificate in %s", body)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if cert.Subject.CommonName != "system:node:"+nodeName || !slices.Equal(cert.Subject.Organization, []string{"system:nodes"}) {
		t.Fatalf("kubelet client certificate for %q is for %v", nodeName, cert.Subject)
	}
}
