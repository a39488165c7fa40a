package kubeconfig

import (
	"regente.io/regente/pkg/atomicfile"

	"fmt"
	"os"
	"path/filepath"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Credentials are the PEM files a kubeconfig embeds.
type Credentials struct {
	CAFile, CertFile, KeyFile string
}

// Write writes a kubeconfig for server (an https URL) with the given
// credentials to path, atomically, with mode. The parent directory is
// created 0755 if missing (it may be /etc/regente, which users list).
func Write(path, server, user string, creds Credentials, mode os.FileMode) error {
	ca, err := os.ReadFile(creds.CAFile)
	if err != nil {
		return fmt.Errorf("read CA for kubeconfig %s: %w", path, err)
	}
	cert, err := os.ReadFile(creds.CertFile)
	if err != nil {
		return fmt.Errorf("read client cert for kubeconfig %s: %w", path, err)
	}
	key, err := os.ReadFile(creds.KeyFile)
	if err != nil {
		return fmt.Errorf("read client key for kubeconfig %s: %w", path, err)
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["default"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: ca}
	cfg.AuthInfos[user] = &clientcmdapi.AuthInfo{ClientCertificateData: cert, ClientKeyData: key}
	cfg.Contexts["default"] = &clientcmdapi.Context{Cluster: "default", AuthInfo: user}
	cfg.CurrentContext = "default"
	data, err := clientcmd.Write(*cfg)
	if err != nil {
		return fmt.Errorf("encode kubeconfig %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create directory for kubeconfig %s: %w", path, err)
	}
	return atomicfile.Write(atomicfile.File{Path: path, Data: data, Mode: mode})
}

// Client loads the kubeconfig at path and returns its REST config and a
// clientset for it.
func Client(path string) (*rest.Config, *kubernetes.Clientset, error) {
	restCfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		return nil, nil, fmt.Errorf("load kubeconfig %s: %w", path, err)
	}
	client, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return nil, nil, fmt.Errorf("client for %s: %w", path, err)
	}
	return restCfg, client, nil
}
