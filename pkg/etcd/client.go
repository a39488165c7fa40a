package etcd

import (
	"crypto/tls"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	"go.uber.org/zap"

	"regente.io/regente/pkg/certs"
)

// clientTLS authenticates with client-etcd and trusts only the etcd CA.
func clientTLS(tlsDir string) (*tls.Config, error) {
	pki := certs.Layout(tlsDir)
	info := transport.TLSInfo{CertFile: pki.EtcdClient.Cert, KeyFile: pki.EtcdClient.Key, TrustedCAFile: pki.EtcdCA.Cert}
	cfg, err := info.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("load the etcd client certificate from %s: %w", tlsDir, err)
	}
	return cfg, nil
}

// quietLogger keeps the etcd client's retry chatter out of regente's
// output: its errors reach the caller anyway.
func quietLogger() *zap.Logger { return zap.NewNop() }

// ClientConfig is the etcd client configuration of NewClient, for callers
// that hand it to an upstream helper (snapshots).
func ClientConfig(tlsDir string, endpoints ...string) (clientv3.Config, error) {
	tlsCfg, err := clientTLS(tlsDir)
	if err != nil {
		return clientv3.Config{}, err
	}
	return clientv3.Config{Endpoints: endpoints, TLS: tlsCfg, DialTimeout: 10 * time.Second, Logger: quietLogger()}, nil
}
