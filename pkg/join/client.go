package join

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"k8s.io/klog/v2"

	"regente.io/regente/pkg/certs"
)

// ClientConfig is what an agent joins with.
type ClientConfig struct {
	ServerURL string // https://host:port of any server
	// FallbackURLs are servers learned before (the load balancer's list),
	// tried in turn when ServerURL does not answer: an agent restarting
	// while the server it names is down joins through another.
	FallbackURLs []string
	Token        Token
	NodeName     string
	NodeIPs      []net.IP
	PasswordFile string // the node password, created on first join
	TLSDir       string // the node's keys and certificates
}

// Result is what a join gives the agent.
type Result struct {
	PKI     *certs.NodePKI
	Cluster Cluster
	Servers []string
}

// refusedError is a join the server refused: retrying will not help.
type refusedError struct{ msg string }

func (e *refusedError) Error() string { return e.msg }

// Join runs the join until it succeeds, the server refuses it, or ctx
// ends; an unreachable server is retried with back-off and a log line
// that says so.
func Join(ctx context.Context, cfg ClientConfig) (*Result, error) {
	u, err := url.Parse(cfg.ServerURL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("server %q must be an https:// URL, e.g. https://192.168.1.10:6443", cfg.ServerURL)
	}
	password, err := NodePassword(cfg.PasswordFile)
	if err != nil {
		return nil, err
	}
	var res *Result
	err = retrying(ctx, cfg.ServerURL, func() error {
		var first error
		for i, server := range append([]string{cfg.ServerURL}, cfg.FallbackURLs...) {
			through := cfg
			through.ServerURL = server
			var err error
			res, err = joinOnce(ctx, through, password)
			// A refusal by the named server is final; a learned server
			// that refuses (no longer this cluster's) is only skipped.
			var refused *refusedError
			if err == nil || (i == 0 && errors.As(err, &refused)) {
				return err
			}
			if first == nil {
				first = err
			}
		}
		return first
	})
	return res, err
}

// retrying runs attempt until it succeeds, is refused, or ctx ends; other
// failures (an unreachable or starting server) are retried with back-off
// and a log line that says so.
func retrying(ctx context.Context, serverURL string, attempt func() error) error {
	logger := klog.FromContext(ctx)
	delay := time.Second
	for {
		err := attempt()
		var refused *refusedError
		if err == nil || errors.As(err, &refused) || ctx.Err() != nil {
			return err
		}
		logger.Info("Cannot join the server yet; retrying", "server", serverURL, "in", delay, "reason", err.Error())
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		delay = min(2*delay, 30*time.Second)
	}
}

func joinOnce(ctx context.Context, cfg ClientConfig, password string) (*Result, error) {
	ca, err := serverCA(ctx, cfg)
	if err != nil {
		return nil, err
	}
	csrs, err := certs.NodeCSRs(cfg.TLSDir)
	if err != nil {
		return nil, &refusedError{err.Error()}
	}
	req := Request{Token: cfg.Token.Credential(), NodeName: cfg.NodeName, NodePassword: password, CSRs: map[certs.NodeRole]string{}}
	for _, ip := range cfg.NodeIPs {
		req.NodeIPs = append(req.NodeIPs, ip.String())
	}
	for role, csr := range csrs {
		req.CSRs[role] = string(csr)
	}
	var out Response
	if err := postJSON(ctx, "join", cfg.ServerURL, ca, PathJoin, req, &out); err != nil {
		return nil, err
	}
	issued := map[certs.NodeRole][]byte{}
	for role, cert := range out.Certificates {
		issued[role] = []byte(cert)
	}
	pki, err := certs.WriteJoinedNode(cfg.TLSDir, ca, []byte(out.ClientCA), issued)
	if err != nil {
		return nil, &refusedError{err.Error()}
	}
	return &Result{PKI: pki, Cluster: out.Cluster, Servers: out.Servers}, nil
}

// postJSON posts in to the join service at path over TLS pinned to ca and
// decodes the answer into out. A refusal by the join service is a
// *refusedError; anything else may be retried. what names the request in
// errors, e.g. "join".
func postJSON(ctx context.Context, what, serverURL string, ca []byte, path string, in, out any) error {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return &refusedError{"the server's CA is not a PEM certificate"}
	}
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	httpReq, err := http.NewRequestWithContext(ctx, http.MethodPost, serverURL+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	httpReq.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(httpReq)
	if err != nil {
		var unknownAuthority x509.UnknownAuthorityError
		var hostname x509.HostnameError
		switch {
		case errors.As(err, &unknownAuthority):
			return &refusedError{fmt.Sprintf("the server at %s presents a certificate its own CA did not sign: %v", serverURL, err)}
		case errors.As(err, &hostname):
			return &refusedError{fmt.Sprintf("the server's certificate is not valid for %s: use the server's IP or a name in its certificate, or add that name with --tls-san on the server (%v)", serverURL, err)}
		}
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var e Error
		if json.Unmarshal(data, &e) != nil || e.Message == "" {
			e.Message = fmt.Sprintf("%s: %s", resp.Status, bytes.TrimSpace(data))
		}
		if resp.Header.Get(RefusedHeader) == "" {
			// Not the join service's answer: a server still starting.
			return fmt.Errorf("the server is not ready to take the %s yet: %s", what, e.Message)
		}
		return &refusedError{fmt.Sprintf("the server refused the %s: %s", what, e.Message)}
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("the join response is not valid JSON: %w", err)
	}
	return nil
}

// serverCA fetches the server CA and checks it against the token's hash.
// A token without a hash is accepted only by a node that already holds
// the CA from an earlier join, which is then what it trusts.
func serverCA(ctx context.Context, cfg ClientConfig) ([]byte, error) {
	known := filepath.Join(cfg.TLSDir, "server-ca.crt")
	if cfg.Token.CAHash == "" {
		ca, err := os.ReadFile(known)
		if err != nil {
			return nil, &refusedError{"the token has no CA hash, so the server cannot be trusted on first join: use the full token, K10<hash>::..., from <data-dir>/server/token or `regente token create`"}
		}
		return ca, nil
	}
	// The CA is not known yet: nothing the server sends before the hash
	// check is trusted, and nothing secret is sent.
	status, ca, err := getCACerts(ctx, cfg.ServerURL, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // verified by hash below
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		// A server still applying its RBAC rules answers 403 for a moment;
		// anything that is not a regente server keeps answering so, and
		// the retry log line says what to check.
		return nil, fmt.Errorf("%s does not serve a regente CA yet (%s): if this lasts, check that it is a regente server's API port", cfg.ServerURL, http.StatusText(status))
	}
	sum := sha256.Sum256(ca)
	if got := hex.EncodeToString(sum[:]); got != cfg.Token.CAHash {
		// After `regente certificate rotate-ca` the server's CA file is a
		// new one, which tokens copied before do not pin. A node that
		// joined before still holds the CA it trusted then; the server's
		// serving chain includes the new CA signed by that one, so a
		// verified connection vouches for the new file.
		if ca, err := vouchedByKnownCA(ctx, cfg, known); err == nil {
			klog.FromContext(ctx).Info("The server's CA changed since this node joined; it is trusted through the CA this node joined with", "server", cfg.ServerURL)
			return ca, nil
		}
		return nil, &refusedError{fmt.Sprintf("the server's CA (sha256 %s...) is not the one the token pins (%s...): the token belongs to another cluster, or something between here and %s is not that server; copy the token again from <data-dir>/server/token",
			got[:12], cfg.Token.CAHash[:12], cfg.ServerURL)}
	}
	return ca, nil
}

// vouchedByKnownCA fetches the server CA file over TLS verified against
// the CA file at known, kept from an earlier join.
func vouchedByKnownCA(ctx context.Context, cfg ClientConfig, known string) ([]byte, error) {
	pem, err := os.ReadFile(known)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no certificate", known)
	}
	status, ca, err := getCACerts(ctx, cfg.ServerURL, &tls.Config{RootCAs: pool})
	if err == nil && status != http.StatusOK {
		err = fmt.Errorf("%s: %s", PathCACerts, http.StatusText(status))
	}
	return ca, err
}

// getCACerts GETs the server's CA file with the given TLS settings.
func getCACerts(ctx context.Context, serverURL string, tlsConfig *tls.Config) (int, []byte, error) {
	client := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsConfig}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, serverURL+PathCACerts, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, body, err
}
