package join

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"k8s.io/klog/v2"
)

// rotate serves PathRotate: the holder of the current server token
// replaces its secret, as k3s's `token rotate` does. Nodes that joined
// keep working, since they authenticate with the certificates the join
// gave them; joins with the old secret are refused from then on.
func (s *Server) rotate(w http.ResponseWriter, r *http.Request) {
	logger := klog.FromContext(r.Context()).WithValues("component", "join", "remote", r.RemoteAddr)
	resp, err := s.handleRotate(r)
	if err != nil {
		logger.Info("Server token rotation refused", "reason", err.Error())
		writeRefusal(w, err)
		return
	}
	logger.Info("Rotated the server token: joins with the old one are refused from now on")
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(resp)
}

func (s *Server) handleRotate(r *http.Request) (*RotateResponse, error) {
	if r.Method != http.MethodPost {
		return nil, refuse(http.StatusMethodNotAllowed, "use POST")
	}
	var req RotateRequest
	if err := json.NewDecoder(http.MaxBytesReader(nil, r.Body, maxRequest)).Decode(&req); err != nil {
		return nil, refuse(http.StatusBadRequest, "the request is not valid JSON: %v", err)
	}
	t, err := ParseToken(req.Token)
	if err != nil {
		return nil, refuse(http.StatusUnauthorized, "%v", err)
	}
	token, err := s.cfg.Tokens.Rotate(r.Context(), t, req.NewSecret)
	if err != nil {
		return nil, err
	}
	return &RotateResponse{Token: token}, nil
}

// RotateToken asks the server at serverURL to replace the secret of its
// server token old with newSecret, and returns the new full token. The
// server is trusted by old's CA hash, or, for a token without one, by the
// server-ca.crt in caDir (a server's own TLS dir).
func RotateToken(ctx context.Context, serverURL string, old Token, newSecret, caDir string) (string, error) {
	if u, err := url.Parse(serverURL); err != nil || u.Scheme != "https" || u.Host == "" {
		return "", fmt.Errorf("--server %q must be an https:// URL, e.g. https://127.0.0.1:6443", serverURL)
	}
	if old.Kind != KindServer {
		return "", fmt.Errorf("rotating needs the current server token (K10<hash>::server:<secret>, in <data-dir>/server/token), not a %s token", old.Kind)
	}
	if err := CheckNewSecret(newSecret); err != nil {
		return "", err
	}
	ca, err := serverCA(ctx, ClientConfig{ServerURL: serverURL, Token: old, TLSDir: caDir})
	if err != nil {
		return "", fmt.Errorf("reach the server at %s: %w", serverURL, err)
	}
	var resp RotateResponse
	if err := postJSON(ctx, "token rotation", serverURL, ca, PathRotate, RotateRequest{Token: old.Credential(), NewSecret: newSecret}, &resp); err != nil {
		return "", err
	}
	return resp.Token, nil
}
