package apiserver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"regente.io/regente/pkg/certs"
)

// waitReady polls url with the supervisor's client certificate until it
// answers 200, the server fails, or ctx ends.
func waitReady(ctx context.Context, url string, pki *certs.PKI, failed <-chan error) error {
	client, err := supervisorHTTPClient(pki)
	if err != nil {
		return err
	}
	ticker := time.NewTicker(200 * time.Millisecond)
	defer ticker.Stop()
	var lastErr string // each round sets it before the select reads it
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := client.Do(req); err != nil {
			lastErr = err.Error()
		} else {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			lastErr = fmt.Sprintf("%s: %s", resp.Status, body)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last answer from %s: %s)", ctx.Err(), url, lastErr)
		case err := <-failed:
			return err
		case <-ticker.C:
		}
	}
}

func supervisorHTTPClient(pki *certs.PKI) (*http.Client, error) {
	caPEM, err := os.ReadFile(pki.ServerCA.Cert)
	if err != nil {
		return nil, fmt.Errorf("read server CA: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	cert, err := tls.LoadX509KeyPair(pki.Supervisor.Cert, pki.Supervisor.Key)
	if err != nil {
		return nil, fmt.Errorf("load supervisor client certificate: %w", err)
	}
	return &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{
			RootCAs:      pool,
			Certificates: []tls.Certificate{cert},
			MinVersion:   tls.VersionTLS12,
		}},
	}, nil
}
