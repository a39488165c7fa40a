package join

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
	bootstrapapi "k8s.io/cluster-bootstrap/token/api"
	bootstraputil "k8s.io/cluster-bootstrap/token/util"
	bootstrapsecretutil "k8s.io/cluster-bootstrap/util/secrets"
	"k8s.io/klog/v2"

	"regente.io/regente/pkg/certs"
	"regente.io/regente/pkg/kubeconfig"
)

// ServerConfig configures the join endpoints.
type ServerConfig struct {
	// Tokens holds the secrets joins are checked against and rotates them.
	Tokens     *Tokens
	CADir      string // the server's TLS dir
	Kubeconfig string // reads bootstrap tokens and EndpointSlices, keeps node passwords
	Cluster    Cluster
	// EncryptionConfig is the Secrets' encryption configuration file,
	// sent to joining servers; "" sends none.
	EncryptionConfig string
	// EtcdMembers lists the embedded etcd cluster's client URLs for
	// joining servers; nil when the server runs no etcd.
	EtcdMembers func(ctx context.Context) ([]string, error)
}

// Server serves the join endpoints.
type Server struct {
	cfg ServerConfig
	// refusals slows token guessing through the endpoints.
	refusals *refusals
	once     sync.Once
	client   kubernetes.Interface
	signer   *certs.Signer
	err      error
}

// NewServer returns the endpoints; they connect to the API lazily, at the
// first join, since they are served by the API server they talk to.
func NewServer(cfg ServerConfig) *Server {
	return &Server{cfg: cfg, refusals: newRefusals()}
}

// Handlers returns the endpoints by path, for the API server's mux.
func (s *Server) Handlers() map[string]http.Handler {
	return map[string]http.Handler{
		PathCACerts:   http.HandlerFunc(s.caCerts),
		PathJoin:      s.limitRefusals(http.HandlerFunc(s.join)),
		PathBootstrap: s.limitRefusals(http.HandlerFunc(s.bootstrap)),
		PathRotate:    s.limitRefusals(http.HandlerFunc(s.rotate)),
	}
}

// caCerts returns the server CA file as it is on disk: the token pins the
// hash of exactly these bytes.
func (s *Server) caCerts(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		http.Error(w, "use GET", http.StatusMethodNotAllowed)
		return
	}
	b, err := os.ReadFile(certs.Layout(s.cfg.CADir).ServerCA.Cert)
	if err != nil {
		http.Error(w, "server CA unavailable", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/x-pem-file")
	_, _ = w.Write(b)
}

// refusal is a join refused with an HTTP status and a message for the user.
type refusal struct {
	status int
	msg    string
}

func (r *refusal) Error() string { return r.msg }

func refuse(status int, format string, args ...any) error {
	return &refusal{status: status, msg: fmt.Sprintf(format, args...)}
}

func (s *Server) join(w http.ResponseWriter, r *http.Request) {
	logger := klog.FromContext(r.Context()).WithValues("component", "join", "remote", r.RemoteAddr)
	resp, req, err := s.handle(r)
	if err != nil {
		logger.Info("Join refused", "node", req.NodeName, "reason", err.Error())
		writeRefusal(w, err)
		return
	}
	logger.Info("Node joined", "node", req.NodeName, "ips", req.NodeIPs)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(resp)
}

// writeRefusal answers with err's status and message; refusals by the
// join service (not server errors) carry RefusedHeader.
func writeRefusal(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	var ref *refusal
	if errors.As(err, &ref) {
		status = ref.status
	}
	w.Header().Set("Content-Type", "application/json")
	if status < 500 {
		w.Header().Set(RefusedHeader, "true")
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(Error{Message: err.Error()})
}

func (s *Server) handle(r *http.Request) (*Response, Request, error) {
	var req Request
	if r.Method != http.MethodPost {
		return nil, req, refuse(http.StatusMethodNotAllowed, "use POST")
	}
	if err := json.NewDecoder(http.MaxBytesReader(nil, r.Body, maxRequest)).Decode(&req); err != nil {
		return nil, req, refuse(http.StatusBadRequest, "the join request is not valid JSON: %v", err)
	}
	if err := s.connect(); err != nil {
		return nil, req, err
	}
	ctx := r.Context()
	if err := s.checkToken(ctx, req.Token); err != nil {
		return nil, req, err
	}
	if errs := validation.IsDNS1123Subdomain(req.NodeName); len(errs) > 0 {
		return nil, req, refuse(http.StatusBadRequest, "node name %q is not valid (%s): set --node-name", req.NodeName, errs[0])
	}
	// The node's password is kept in a Secret named after the node, whose
	// name has the same limit as the node's.
	if n := len(NodePasswordSecret(req.NodeName)) - len(req.NodeName); len(req.NodeName) > validation.DNS1123SubdomainMaxLength-n {
		return nil, req, refuse(http.StatusBadRequest, "node name %q has %d characters: use at most %d (set --node-name)", req.NodeName, len(req.NodeName), validation.DNS1123SubdomainMaxLength-n)
	}
	var ips []net.IP
	for _, s := range req.NodeIPs {
		ip := net.ParseIP(s)
		if ip == nil {
			return nil, req, refuse(http.StatusBadRequest, "node IP %q is not an IP address: check --node-ip", s)
		}
		ips = append(ips, ip)
	}
	if err := s.checkNodePassword(ctx, req.NodeName, req.NodePassword); err != nil {
		return nil, req, err
	}
	resp := &Response{
		ServerCA:     string(s.signer.ServerCAPEM()),
		ClientCA:     string(s.signer.ClientCAPEM()),
		Certificates: map[certs.NodeRole]string{},
		Cluster:      s.cfg.Cluster,
	}
	for _, role := range certs.NodeRoles {
		csr, ok := req.CSRs[role]
		if !ok {
			return nil, req, refuse(http.StatusBadRequest, "the join request has no CSR for %s", role)
		}
		cert, err := s.signer.Sign(role, req.NodeName, ips, []byte(csr))
		if err != nil {
			return nil, req, refuse(http.StatusBadRequest, "%v", err)
		}
		resp.Certificates[role] = string(cert)
	}
	servers, err := s.servers(ctx)
	if err != nil {
		return nil, req, err
	}
	resp.Servers = servers
	return resp, req, nil
}

func (s *Server) connect() error {
	s.once.Do(func() {
		if _, s.client, s.err = kubeconfig.Client(s.cfg.Kubeconfig); s.err != nil {
			return
		}
		s.signer, s.err = certs.NewSigner(s.cfg.CADir)
	})
	return s.err
}

// checkToken accepts the server secret, the agent secret, or a bootstrap
// token that exists, has not expired and may authenticate.
func (s *Server) checkToken(ctx context.Context, credential string) error {
	t, err := ParseToken(credential)
	if err != nil {
		return refuse(http.StatusUnauthorized, "%v", err)
	}
	const fix = "copy the token from <data-dir>/server/token on a server, or create one with `regente token create`"
	server, agent := s.cfg.Tokens.secrets()
	switch t.Kind {
	case KindServer:
		if equal(t.Secret, server) {
			return nil
		}
	case KindNode:
		if equal(t.Secret, agent) {
			return nil
		}
	case KindBootstrap:
		secret, err := s.client.CoreV1().Secrets(metav1.NamespaceSystem).Get(ctx, bootstraputil.BootstrapTokenSecretName(t.ID), metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return refuse(http.StatusUnauthorized, "bootstrap token %s does not exist (it expired and was cleaned up, or was deleted, or never created): %s", t.ID, fix)
		}
		if err != nil {
			return fmt.Errorf("read bootstrap token %s: %w", t.ID, err)
		}
		switch {
		case !equal(bootstrapsecretutil.GetData(secret, bootstrapapi.BootstrapTokenSecretKey), t.Secret):
		case bootstrapsecretutil.HasExpired(secret, time.Now()):
			return refuse(http.StatusUnauthorized, "bootstrap token %s has expired: create a new one with `regente token create`", t.ID)
		case bootstrapsecretutil.GetData(secret, bootstrapapi.BootstrapTokenUsageAuthentication) != "true":
			return refuse(http.StatusUnauthorized, "bootstrap token %s may not be used to join (usage-bootstrap-authentication is not true): create one with `regente token create`", t.ID)
		default:
			return nil
		}
	}
	if when, ok := s.cfg.Tokens.revokedAt(t); ok {
		return refuse(http.StatusUnauthorized, "the token was replaced by `regente token rotate` on %s: use the new token, in <data-dir>/server/token on a server", when.Format(time.RFC3339))
	}
	return refuse(http.StatusUnauthorized, "the token's secret does not match this server's: %s", fix)
}

func equal(a, b string) bool {
	return b != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// NodePasswordSecret names the Secret that holds a node's password hash.
func NodePasswordSecret(nodeName string) string { return nodeName + ".node-password.regente" }

// checkNodePassword records the password of a new node name, or checks it
// against the recorded one.
func (s *Server) checkNodePassword(ctx context.Context, nodeName, password string) error {
	if password == "" {
		return refuse(http.StatusBadRequest, "the join request has no node password")
	}
	return EnsureNodePassword(ctx, s.client, nodeName, password)
}

// EnsureNodePassword records password for nodeName, or checks it against
// the one recorded; the server's own node registers the same way, so no
// agent can take its name.
func EnsureNodePassword(ctx context.Context, client kubernetes.Interface, nodeName, password string) error {
	secrets := client.CoreV1().Secrets(metav1.NamespaceSystem)
	name := NodePasswordSecret(nodeName)
	for attempt := 0; attempt < 2; attempt++ {
		existing, err := secrets.Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			if bcrypt.CompareHashAndPassword(existing.Data["hash"], []byte(password)) != nil {
				return refuse(http.StatusForbidden, "node name %q is registered by another machine (its node password differs): give this machine another --node-name, or, if it replaces that node, run `kubectl delete node %s` first", nodeName, nodeName)
			}
			return nil
		}
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("read the node password of %s: %w", nodeName, err)
		}
		hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
		if err != nil {
			return fmt.Errorf("hash the node password of %s: %w", nodeName, err)
		}
		_, err = secrets.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: metav1.NamespaceSystem, Labels: map[string]string{NodePasswordLabel: nodeName}},
			Immutable:  new(true),
			Data:       map[string][]byte{"hash": hash},
		}, metav1.CreateOptions{})
		if err == nil {
			return nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("record the node password of %s: %w", nodeName, err)
		}
		// Another join of the same name won the race: compare with it.
	}
	return fmt.Errorf("record the node password of %s: conflicting joins", nodeName)
}

// NodePasswordLabel marks node password Secrets with their node's name.
const NodePasswordLabel = "regente.io/node-password"

// servers lists the API servers' URLs from the kubernetes Service's
// EndpointSlices, the addresses every apiserver advertises.
func (s *Server) servers(ctx context.Context) ([]string, error) {
	slices_, err := s.client.DiscoveryV1().EndpointSlices(metav1.NamespaceDefault).List(ctx, metav1.ListOptions{
		LabelSelector: discoveryv1.LabelServiceName + "=kubernetes"})
	if err != nil {
		return nil, fmt.Errorf("list the API servers: %w", err)
	}
	var urls []string
	for _, slice := range slices_.Items {
		for _, port := range slice.Ports {
			if port.Port == nil || (port.Name != nil && *port.Name != "https") {
				continue
			}
			for _, ep := range slice.Endpoints {
				for _, addr := range ep.Addresses {
					urls = append(urls, "https://"+net.JoinHostPort(addr, strconv.Itoa(int(*port.Port))))
				}
			}
		}
	}
	slices.Sort(urls)
	return slices.Compact(urls), nil
}
