package join

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"k8s.io/klog/v2"

	"regente.io/regente/pkg/atomicfile"
	"regente.io/regente/pkg/certs"
)

// PathBootstrap is where another server, holding the server token, fetches
// the cluster's CAs and keys, so that every server issues and trusts the
// same certificates and service account tokens.
const PathBootstrap = "/v1-regente/bootstrap"

// BootstrapRequest is what a joining server posts to PathBootstrap.
type BootstrapRequest struct {
	Token string `json:"token"`
}

// BootstrapResponse holds the shared files by name.
type BootstrapResponse struct {
	Files map[string][]byte `json:"files"`
	// EtcdMembers are the client URLs of the embedded etcd cluster, empty
	// when the server keeps its data elsewhere.
	EtcdMembers []string `json:"etcdMembers,omitempty"`
	// EncryptionConfig is the Secrets' encryption configuration: every
	// server needs the keys the others encrypt with.
	EncryptionConfig []byte `json:"encryptionConfig,omitempty"`
}

func (s *Server) bootstrap(w http.ResponseWriter, r *http.Request) {
	logger := klog.FromContext(r.Context()).WithValues("component", "join", "remote", r.RemoteAddr)
	resp, err := s.handleBootstrap(r)
	if err != nil {
		writeRefusal(w, err)
		logger.Info("Server join refused", "reason", err.Error())
		return
	}
	logger.Info("Sent the cluster's CAs to a joining server")
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(resp)
}

func (s *Server) handleBootstrap(r *http.Request) (*BootstrapResponse, error) {
	if r.Method != http.MethodPost {
		return nil, refuse(http.StatusMethodNotAllowed, "use POST")
	}
	var req BootstrapRequest
	if err := json.NewDecoder(http.MaxBytesReader(nil, r.Body, maxRequest)).Decode(&req); err != nil {
		return nil, refuse(http.StatusBadRequest, "the request is not valid JSON: %v", err)
	}
	t, err := ParseToken(req.Token)
	if err != nil {
		return nil, refuse(http.StatusUnauthorized, "%v", err)
	}
	server, _ := s.cfg.Tokens.secrets()
	if when, ok := s.cfg.Tokens.revokedAt(t); ok && t.Kind == KindServer {
		return nil, refuse(http.StatusUnauthorized, "the server token was replaced by `regente token rotate` on %s: join with the new token, in <data-dir>/server/token on the first server", when.Format(time.RFC3339))
	}
	if t.Kind != KindServer || !equal(t.Secret, server) {
		return nil, refuse(http.StatusUnauthorized, "only the server token (K10<hash>::server:<secret>, in <data-dir>/server/token) lets a server join: agent and bootstrap tokens do not carry the cluster's keys")
	}
	files, err := certs.ReadShared(s.cfg.CADir)
	if err != nil {
		return nil, err
	}
	resp := &BootstrapResponse{Files: files}
	if s.cfg.EncryptionConfig != "" {
		b, err := os.ReadFile(s.cfg.EncryptionConfig)
		if err != nil {
			return nil, fmt.Errorf("read the encryption configuration: %w", err)
		}
		resp.EncryptionConfig = b
	}
	if s.cfg.EtcdMembers != nil {
		members, err := s.cfg.EtcdMembers(r.Context())
		if err != nil {
			return nil, fmt.Errorf("list etcd members: %w", err)
		}
		resp.EtcdMembers = members
	}
	return resp, nil
}

// FetchBootstrap gets the cluster's CAs and keys from the server at
// serverURL for a joining server and writes them into tlsDir (keys 0600),
// and the Secrets' encryption configuration to encryptionConfig (0600).
// A tlsDir that already holds a server CA must hold the one the token
// pins: a data dir never changes cluster.
func FetchBootstrap(ctx context.Context, serverURL string, token Token, tlsDir, encryptionConfig string) error {
	if u, err := url.Parse(serverURL); err != nil || u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("--server %q must be an https:// URL, e.g. https://192.168.1.10:6443", serverURL)
	}
	if token.Kind != KindServer || token.CAHash == "" {
		return fmt.Errorf("a joining server needs the full server token, K10<hash>::server:<secret>, from <data-dir>/server/token on a server")
	}
	if b, err := os.ReadFile(filepath.Join(tlsDir, "server-ca.crt")); err == nil {
		sum := sha256.Sum256(b)
		if hex.EncodeToString(sum[:]) != token.CAHash {
			return fmt.Errorf("%s holds another cluster's CA than the token's: this data dir belongs to another cluster; use a fresh --data-dir to join this one", tlsDir)
		}
		return nil // joined before: the files are here
	}
	resp, err := fetchBootstrap(ctx, serverURL, token, tlsDir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(tlsDir, 0o700); err != nil {
		return err
	}
	files, err := certs.SharedWrites(tlsDir, resp.Files, "the answer of "+serverURL)
	if err != nil {
		return fmt.Errorf("join %s as a server: %w", serverURL, err)
	}
	if len(resp.EncryptionConfig) > 0 {
		if err := os.MkdirAll(filepath.Dir(encryptionConfig), 0o700); err != nil {
			return err
		}
		files = append(files, atomicfile.File{Path: encryptionConfig, Data: resp.EncryptionConfig, Mode: 0o600})
	}
	return atomicfile.Write(files...)
}

func fetchBootstrap(ctx context.Context, serverURL string, token Token, tlsDir string) (*BootstrapResponse, error) {
	var resp BootstrapResponse
	err := retrying(ctx, serverURL, func() error {
		ca, err := serverCA(ctx, ClientConfig{ServerURL: serverURL, Token: token, TLSDir: tlsDir})
		if err != nil {
			return err
		}
		return postJSON(ctx, "join", serverURL, ca, PathBootstrap, BootstrapRequest{Token: token.Credential()}, &resp)
	})
	if err != nil {
		return nil, fmt.Errorf("join %s as a server: %w", serverURL, err)
	}
	return &resp, nil
}

// FetchEtcdMembers asks the server at serverURL for the client URLs of its
// embedded etcd cluster, which a joining server adds itself to.
func FetchEtcdMembers(ctx context.Context, serverURL string, token Token, tlsDir string) ([]string, error) {
	resp, err := fetchBootstrap(ctx, serverURL, token, tlsDir)
	if err != nil {
		return nil, err
	}
	if len(resp.EtcdMembers) == 0 {
		return nil, fmt.Errorf("the server at %s runs no embedded etcd, so this server cannot join its datastore: "+
			"restart that server with --cluster-init (its SQLite data moves into etcd), or give every server the same --datastore-endpoint", serverURL)
	}
	return resp.EtcdMembers, nil
}
