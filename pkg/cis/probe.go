package cis

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	kubeletv1beta1 "k8s.io/kubelet/config/v1beta1"
	"k8s.io/utils/ptr"

	"regente.io/regente/pkg/datadir"
	"regente.io/regente/pkg/etcd"
	"regente.io/regente/pkg/secretsencrypt"
)

// probeName names every object the checks ask about; none is created.
const probeName = "regente-cis-probe"

// probe is what the checks share: the server's files and clients of its
// API, and what they learned once (the nodes and their kubelets' config).
type probe struct {
	layout  datadir.Layout
	rest    *rest.Config
	client  kubernetes.Interface
	timeout time.Duration

	nodes    []corev1.Node
	kubelets map[string]*kubeletv1beta1.KubeletConfiguration // by node name
	kubeErrs map[string]error
}

func (p *probe) loadNodes(ctx context.Context) error {
	nodes, err := p.client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list the nodes: %w", err)
	}
	p.nodes = nodes.Items
	p.kubelets, p.kubeErrs = map[string]*kubeletv1beta1.KubeletConfiguration{}, map[string]error{}
	for _, n := range p.nodes {
		p.kubelets[n.Name], p.kubeErrs[n.Name] = p.kubeletConfig(ctx, n.Name)
	}
	return nil
}

// kubeletConfig is the configuration the node's kubelet runs with, from
// its /configz through the API server.
func (p *probe) kubeletConfig(ctx context.Context, node string) (*kubeletv1beta1.KubeletConfiguration, error) {
	b, err := p.client.CoreV1().RESTClient().Get().AbsPath("/api/v1/nodes", node, "proxy", "configz").DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the kubelet's /configz: %w", err)
	}
	var configz struct {
		Kubelet kubeletv1beta1.KubeletConfiguration `json:"kubeletconfig"`
	}
	if err := json.Unmarshal(b, &configz); err != nil {
		return nil, fmt.Errorf("decode the kubelet's /configz: %w", err)
	}
	return &configz.Kubelet, nil
}

// eachKubelet applies check to every node's kubelet configuration and
// passes when all pass.
func eachKubelet(p *probe, check func(*kubeletv1beta1.KubeletConfiguration) (string, bool)) (string, bool) {
	if len(p.nodes) == 0 {
		return "no nodes", true
	}
	var found []string
	ok := true
	for _, n := range p.nodes {
		cfg, err := p.kubelets[n.Name], p.kubeErrs[n.Name]
		if err != nil {
			found, ok = append(found, n.Name+": "+err.Error()), false
			continue
		}
		detail, pass := check(cfg)
		found, ok = append(found, n.Name+": "+detail), ok && pass
	}
	return strings.Join(found, "; "), ok
}

// fileModes checks that each existing file has no permission bits beyond
// max and belongs to root; missing files are skipped.
func fileModes(max os.FileMode, paths ...string) (string, bool) {
	var bad []string
	checked := 0
	for _, path := range paths {
		info, err := os.Stat(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			bad = append(bad, err.Error())
			continue
		}
		checked++
		if mode := info.Mode().Perm(); mode&^max != 0 {
			bad = append(bad, fmt.Sprintf("%s is %04o", path, mode))
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok && st.Uid != 0 {
			bad = append(bad, fmt.Sprintf("%s belongs to uid %d", path, st.Uid))
		}
	}
	if len(bad) > 0 {
		return strings.Join(bad, "; "), false
	}
	return fmt.Sprintf("%d checked, none above %04o", checked, max), true
}

// filesIn lists the regular files directly in dir whose names match.
func filesIn(dir string, match func(name string) bool) []string {
	entries, _ := os.ReadDir(dir) // a missing dir has nothing to check
	var out []string
	for _, e := range entries {
		if e.Type().IsRegular() && match(e.Name()) {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	return out
}

func dataDirModes(_ context.Context, p *probe) (string, bool) {
	return fileModes(0o700, p.layout.Server.DBDir, p.layout.Server.EtcdDir)
}

func pkiModes(_ context.Context, p *probe) (string, bool) {
	isKey := func(n string) bool { return strings.HasSuffix(n, ".key") }
	keys := append(filesIn(p.layout.Server.TLSDir, isKey), filesIn(p.layout.Agent.TLSDir, isKey)...)
	keyDetail, keysOK := fileModes(0o600, keys...)
	certs := append(filesIn(p.layout.Server.TLSDir, func(n string) bool { return !isKey(n) }), filesIn(p.layout.Agent.TLSDir, func(n string) bool { return !isKey(n) })...)
	certDetail, certsOK := fileModes(0o644, certs...)
	return "keys: " + keyDetail + "; certificates: " + certDetail, keysOK && certsOK
}

func credentialModes(_ context.Context, p *probe) (string, bool) {
	s := p.layout.Server
	files := append(filesIn(s.CredDir, func(string) bool { return true }), s.TokenFile, s.AgentToken, s.RevokedFile)
	return fileModes(0o600, files...)
}

func kubeletFileModes(_ context.Context, p *probe) (string, bool) {
	a := p.layout.Agent
	return fileModes(0o600, a.KubeletKubeconfig, a.ProxyKubeconfig, filepath.Join(a.ConfigDir, "kubelet-config.yaml"))
}

// get sends a GET to the API server with client's transport and returns
// the status code.
func (p *probe) get(ctx context.Context, cfg *rest.Config, path string) (int, error) {
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(cfg.Host, "/")+path, nil)
	if err != nil {
		return 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

func anonymousRefused(ctx context.Context, p *probe) (string, bool) {
	anon := rest.AnonymousClientConfig(p.rest)
	api, err := p.get(ctx, anon, "/api")
	if err != nil {
		return "anonymous GET /api: " + err.Error(), false
	}
	ready, err := p.get(ctx, anon, "/readyz")
	if err != nil {
		return "anonymous GET /readyz: " + err.Error(), false
	}
	detail := fmt.Sprintf("anonymous GET /api: %d, GET /readyz: %d", api, ready)
	return detail, api == http.StatusUnauthorized || api == http.StatusForbidden
}

func apiserverProfilingOff(ctx context.Context, p *probe) (string, bool) {
	code, err := p.get(ctx, p.rest, "/debug/pprof/")
	if err != nil {
		return err.Error(), false
	}
	return fmt.Sprintf("GET /debug/pprof/ as admin: %d", code), code == http.StatusNotFound
}

func authorizationEnforced(ctx context.Context, p *probe) (string, bool) {
	ask := func(user string, groups ...string) (bool, error) {
		review, err := p.client.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{
			Spec: authorizationv1.SubjectAccessReviewSpec{User: user, Groups: groups, ResourceAttributes: &authorizationv1.ResourceAttributes{
				Namespace: metav1.NamespaceDefault, Verb: "get", Resource: "secrets", Name: probeName}},
		}, metav1.CreateOptions{})
		if err != nil {
			return false, err
		}
		return review.Status.Allowed, nil
	}
	stranger, err := ask(probeName, "system:authenticated")
	if err != nil {
		return "SubjectAccessReview: " + err.Error(), false
	}
	node, err := ask("system:node:"+probeName, "system:nodes", "system:authenticated")
	if err != nil {
		return "SubjectAccessReview: " + err.Error(), false
	}
	detail := fmt.Sprintf("an authenticated user without roles may read a Secret: %v; a node may read a Secret no pod of it uses: %v", stranger, node)
	return detail, !stranger && !node
}

func nodeRestriction(ctx context.Context, p *probe) (string, bool) {
	asNode := rest.CopyConfig(p.rest)
	asNode.Impersonate = rest.ImpersonationConfig{UserName: "system:node:" + probeName + "-a", Groups: []string{"system:nodes", "system:authenticated"}}
	client, err := kubernetes.NewForConfig(asNode)
	if err != nil {
		return err.Error(), false
	}
	_, err = client.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: probeName + "-b"}},
		metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	switch {
	case err == nil:
		return "a node could create another node (dry run)", false
	case apierrors.IsForbidden(err) && strings.Contains(err.Error(), "is not allowed to modify node"):
		return "a node creating another node (dry run): refused by NodeRestriction", true
	default:
		return "a node creating another node (dry run): " + err.Error(), false
	}
}

func auditLogWritten(ctx context.Context, p *probe) (string, bool) {
	path := p.layout.Server.AuditLog
	if _, err := os.Stat(path); err != nil {
		return fmt.Sprintf("no audit log at %s", path), false
	}
	name := probeName + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	_, err := p.client.CoreV1().ConfigMaps(metav1.NamespaceSystem).Get(ctx, name, metav1.GetOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return "GET a ConfigMap: " + err.Error(), false
	}
	deadline := time.Now().Add(p.timeout)
	for {
		if b, err := os.ReadFile(path); err == nil && bytes.Contains(b, []byte(name)) {
			return fmt.Sprintf("%s recorded a GET of ConfigMap %s", path, name), true
		}
		if time.Now().After(deadline) {
			return fmt.Sprintf("%s did not record a GET of ConfigMap %s within %s", path, name, p.timeout), false
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func secretsEncrypted(ctx context.Context, p *probe) (string, bool) {
	dir := p.layout.Server.CredDir
	cfg, err := secretsencrypt.Load(dir)
	if err != nil {
		return err.Error(), false
	}
	if !cfg.Enabled() {
		return secretsencrypt.Path(dir) + " writes Secrets unencrypted (identity first)", false
	}
	content, err := os.ReadFile(secretsencrypt.Path(dir))
	if err != nil {
		return err.Error(), false
	}
	loaded, err := secretsencrypt.LoadedHash(ctx, p.client)
	if err != nil {
		return err.Error(), false
	}
	if loaded != secretsencrypt.Hash(content) {
		return "the API server has not loaded " + secretsencrypt.Path(dir) + " yet", false
	}
	return "the API server encrypts Secrets with " + secretsencrypt.Path(dir), true
}

// hostAddrs are this host's addresses other than loopback.
func hostAddrs() []net.IP {
	addrs, _ := net.InterfaceAddrs() // none means nothing to probe
	var out []net.IP
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && !n.IP.IsLinkLocalUnicast() {
			out = append(out, n.IP)
		}
	}
	return out
}

func (p *probe) dial(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		conn.Close()
	}
	return err
}

// loopbackOnly checks that a component's port answers on 127.0.0.1 and on
// none of the host's other addresses.
func loopbackOnly(port int, owner string) func(context.Context, *probe) (string, bool) {
	return func(_ context.Context, p *probe) (string, bool) {
		if err := p.dial(net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); err != nil {
			return fmt.Sprintf("%s does not run on this host (127.0.0.1:%d: %v)", owner, port, err), true
		}
		var open []string
		addrs := hostAddrs()
		for _, ip := range addrs {
			addr := net.JoinHostPort(ip.String(), strconv.Itoa(port))
			if p.dial(addr) == nil {
				open = append(open, addr)
			}
		}
		if len(open) > 0 {
			return fmt.Sprintf("%s answers on %s", owner, strings.Join(open, ", ")), false
		}
		return fmt.Sprintf("%s answers on 127.0.0.1:%d and on none of %d other addresses", owner, port, len(addrs)), true
	}
}

func etcdCertsRequired(_ context.Context, p *probe) (string, bool) {
	if _, err := os.Stat(p.layout.Server.EtcdDir); err != nil {
		return "no embedded etcd on this host", true
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(etcd.ClientPort))
	status, err := requestWithoutCert(addr, "/version", p.timeout)
	if err != nil {
		return fmt.Sprintf("a request to %s without a client certificate failed: %v", addr, err), true
	}
	return fmt.Sprintf("a request to %s without a client certificate got %q", addr, status), false
}

// requestWithoutCert sends an HTTPS GET without a client certificate,
// not verifying the server (only its refusal matters), and returns the
// status line.
func requestWithoutCert(addr, path string, timeout time.Duration) (string, error) {
	dialer := &net.Dialer{Timeout: timeout}
	conn, err := tls.DialWithDialer(dialer, "tcp", addr, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // probing for a refusal
	if err != nil {
		return "", err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(timeout)); err != nil {
		return "", err
	}
	if _, err := io.WriteString(conn, "GET "+path+" HTTP/1.1\r\nHost: "+addr+"\r\nConnection: close\r\n\r\n"); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(line), nil
}

func kubeletAuth(_ context.Context, p *probe) (string, bool) {
	return eachKubelet(p, func(c *kubeletv1beta1.KubeletConfiguration) (string, bool) {
		anonymous := ptr.Deref(c.Authentication.Anonymous.Enabled, true)
		return fmt.Sprintf("anonymous %v, authorization %s, client CA %q", anonymous, c.Authorization.Mode, c.Authentication.X509.ClientCAFile),
			!anonymous && c.Authorization.Mode == kubeletv1beta1.KubeletAuthorizationModeWebhook && c.Authentication.X509.ClientCAFile != ""
	})
}

func kubeletReadOnlyPortOff(_ context.Context, p *probe) (string, bool) {
	return eachKubelet(p, func(c *kubeletv1beta1.KubeletConfiguration) (string, bool) {
		return fmt.Sprintf("read-only port %d", c.ReadOnlyPort), c.ReadOnlyPort == 0
	})
}

func kubeletProtectsKernelDefaults(_ context.Context, p *probe) (string, bool) {
	return eachKubelet(p, func(c *kubeletv1beta1.KubeletConfiguration) (string, bool) {
		return fmt.Sprintf("protectKernelDefaults %v", c.ProtectKernelDefaults), c.ProtectKernelDefaults
	})
}

func privilegedPodRejected(ctx context.Context, p *probe) (string, bool) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: probeName},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "probe", Image: "cis-probe:dry-run",
			SecurityContext: &corev1.SecurityContext{Privileged: ptr.To(true)},
		}}},
	}
	_, err := p.client.CoreV1().Pods(metav1.NamespaceDefault).Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	switch {
	case err == nil:
		return "a privileged pod in namespace default was admitted (dry run)", false
	case apierrors.IsForbidden(err) && strings.Contains(err.Error(), "violates PodSecurity"):
		return "a privileged pod in namespace default (dry run): refused by PodSecurity", true
	default:
		return "a privileged pod in namespace default (dry run): " + err.Error(), false
	}
}
