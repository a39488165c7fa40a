package apiserver

import (
	"context"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	encryptionconfigcontroller "k8s.io/apiserver/pkg/server/options/encryptionconfig/controller"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
	"k8s.io/kubernetes/cmd/kube-apiserver/app/options"
	controlplaneapiserver "k8s.io/kubernetes/pkg/controlplane/apiserver"

	"regente.io/regente/pkg/certs"
	"regente.io/regente/pkg/component"
)

// encryptionConfigPoll is how often the API server looks for a changed
// encryption configuration.
const encryptionConfigPoll = 3 * time.Second

// Config is what the apiserver needs from the server's options.
type Config struct {
	BindAddress      string
	AdvertiseAddress string
	Port             int
	ServiceCIDR      string
	ClusterDomain    string
	EtcdServers      string
	// EtcdTLS is set when EtcdServers is embedded etcd: the apiserver
	// authenticates with the etcd client certificate.
	EtcdTLS *EtcdTLS
	PKI     *certs.PKI
	// ConfigDir holds files generated for the apiserver (authentication config).
	ConfigDir string
	// EncryptionConfig is the Secrets' encryption configuration, which
	// the API server reloads when it changes (pkg/secretsencrypt).
	EncryptionConfig string
	// Alone is true when no other API server shares the datastore (a
	// server on its own SQLite file). Then nothing needs the heartbeats
	// that API servers keep in the datastore for each other, and each
	// heartbeat is a row written to the disk: see aloneArgs.
	Alone bool
	// Hardening is what --profile cis adds; nil without it.
	Hardening *Hardening
	// ExtraArgs are the user's --kube-apiserver-arg values, "--key=value".
	ExtraArgs []string
	// Handlers are regente's own endpoints, served on the API server's
	// port by path; anonymous requests may reach them (RBAC must allow
	// the paths for system:unauthenticated) and they authenticate on their
	// own.
	Handlers map[string]http.Handler
}

// Hardening is what the CIS Kubernetes Benchmark asks of the API server
// beyond regente's defaults.
type Hardening struct {
	// AuditLog is the audit log file. Every request's metadata is
	// recorded, and the file is rotated as the benchmark asks (at 100 MB,
	// 10 old files kept for 30 days).
	AuditLog string
	// PodSecurityLevel is the Pod Security Standard enforced in every
	// namespace that sets no level of its own, except PodSecurityExempt.
	PodSecurityLevel  string
	PodSecurityExempt []string
}

// EtcdTLS names the files of the apiserver's etcd client.
type EtcdTLS struct{ CAFile, CertFile, KeyFile string }

// APIServer is the kube-apiserver component.
type APIServer struct {
	component.Runner
	cfg  Config
	opts *options.ServerRunOptions
}

var (
	_ component.Component = (*APIServer)(nil)
	_ component.Ready     = (*APIServer)(nil)
	_ component.Failer    = (*APIServer)(nil)
)

// New returns the apiserver component.
func New(cfg Config) *APIServer {
	return &APIServer{cfg: cfg}
}

// Name implements component.Component.
func (a *APIServer) Name() string { return "apiserver" }

var _ component.Initer = (*APIServer)(nil)

// Init parses the flags, so a bad --kube-apiserver-arg is reported before
// anything starts. It writes nothing: Start writes the files they name.
func (a *APIServer) Init(context.Context) error {
	opts := options.NewServerRunOptions()
	fs := pflag.NewFlagSet("kube-apiserver", pflag.ContinueOnError)
	for _, f := range opts.Flags().FlagSets {
		fs.AddFlagSet(f)
	}
	args := component.MergeArgs(a.defaultArgs(a.authnFile()), a.cfg.ExtraArgs)
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("parse kube-apiserver flags (check --kube-apiserver-arg): %w", err)
	}
	a.opts = opts
	return nil
}

func (a *APIServer) authnFile() string {
	return filepath.Join(a.cfg.ConfigDir, "authentication-config.yaml")
}

func (a *APIServer) defaultArgs(authnFile string) []string {
	args := a.baseArgs(authnFile)
	if t := a.cfg.EtcdTLS; t != nil {
		args = append(args, "--etcd-cafile="+t.CAFile, "--etcd-certfile="+t.CertFile, "--etcd-keyfile="+t.KeyFile)
	}
	if a.cfg.EncryptionConfig != "" {
		args = append(args, "--encryption-provider-config="+a.cfg.EncryptionConfig, "--encryption-provider-config-automatic-reload=true")
	}
	if a.cfg.Alone {
		args = append(args, aloneArgs()...)
	}
	if h := a.cfg.Hardening; h != nil {
		args = append(args,
			"--audit-log-path="+h.AuditLog,
			"--audit-policy-file="+a.auditPolicyFile(),
			"--audit-log-maxage=30",
			"--audit-log-maxbackup=10",
			"--audit-log-maxsize=100",
			"--admission-control-config-file="+a.admissionConfigFile())
	}
	return args
}

func (a *APIServer) auditPolicyFile() string {
	return filepath.Join(a.cfg.ConfigDir, "audit-policy.yaml")
}

func (a *APIServer) admissionConfigFile() string {
	return filepath.Join(a.cfg.ConfigDir, "admission-config.yaml")
}

// auditPolicy records who did what to which object, never a request's or
// response's body: Secrets would end up in the log.
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Metadata
`

// admissionConfig sets the PodSecurity admission plugin's defaults: the
// level is enforced, audited and warned about wherever a namespace's
// pod-security.kubernetes.io labels do not say otherwise.
func (h *Hardening) admissionConfig() string {
	exempt := make([]string, len(h.PodSecurityExempt))
	for i, ns := range h.PodSecurityExempt {
		exempt[i] = strconv.Quote(ns)
	}
	return fmt.Sprintf(`apiVersion: apiserver.config.k8s.io/v1
kind: AdmissionConfiguration
plugins:
- name: PodSecurity
  configuration:
    apiVersion: pod-security.admission.config.k8s.io/v1
    kind: PodSecurityConfiguration
    defaults:
      enforce: %[1]q
      enforce-version: latest
      audit: %[1]q
      audit-version: latest
      warn: %[1]q
      warn-version: latest
    exemptions:
      namespaces: [%[2]s]
`, h.PodSecurityLevel, strings.Join(exempt, ", "))
}

// aloneArgs turn off what API servers write to the datastore only to find
// each other, every 10 s each: on an idle server alone on SQLite they were
// most of its rows, and every row costs about 40 KiB of WAL on the disk
// (hack/bench.sh -only writes).
func aloneArgs() []string {
	return []string{
		// The lease reconciler renews /masterleases/<ip> to keep the
		// kubernetes Service's endpoints; counting to one API server needs no
		// lease and writes only when the endpoints change. Upstream deprecates
		// master-count but still ships it, and it was the default for years.
		"--endpoint-reconciler-type=master-count",
		"--apiserver-count=1",
		// The peer proxy (beta since 1.36) forwards requests to API servers of
		// another version and renews /peerserverleases/ for it; alone there
		// is no peer.
		"--feature-gates=UnknownVersionInteroperabilityProxy=false",
	}
}

// aloneIdentityLeaseRenewal is how often an API server alone renews its
// identity lease (upstream: every 10 s, for a lease of an hour); nothing
// reads it sooner than the garbage collector, which waits for the hour.
const aloneIdentityLeaseRenewal = time.Minute

func (a *APIServer) baseArgs(authnFile string) []string {
	p := a.cfg.PKI
	issuer := "https://kubernetes.default.svc." + a.cfg.ClusterDomain
	return []string{
		"--advertise-address=" + a.cfg.AdvertiseAddress,
		"--bind-address=" + a.cfg.BindAddress,
		"--secure-port=" + strconv.Itoa(a.cfg.Port),
		"--etcd-servers=" + a.cfg.EtcdServers,
		"--storage-backend=etcd3",
		"--service-cluster-ip-range=" + a.cfg.ServiceCIDR,
		"--service-node-port-range=30000-32767",
		"--allow-privileged=true",
		"--authorization-mode=Node,RBAC",
		"--enable-admission-plugins=NodeRestriction",
		"--authentication-config=" + authnFile,
		"--client-ca-file=" + p.ClientCA.Cert,
		"--tls-cert-file=" + p.APIServerServing.Cert,
		"--tls-private-key-file=" + p.APIServerServing.Key,
		"--kubelet-client-certificate=" + p.APIServerKubelet.Cert,
		"--kubelet-client-key=" + p.APIServerKubelet.Key,
		"--kubelet-certificate-authority=" + p.ServerCA.Cert,
		// Node names need not resolve (they rarely do on small clusters):
		// reach kubelets at their addresses, which their serving
		// certificates hold.
		"--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname",
		"--proxy-client-cert-file=" + p.AuthProxy.Cert,
		"--proxy-client-key-file=" + p.AuthProxy.Key,
		"--requestheader-client-ca-file=" + p.RequestHeaderCA.Cert,
		"--requestheader-allowed-names=system:auth-proxy",
		"--requestheader-extra-headers-prefix=X-Remote-Extra-",
		"--requestheader-group-headers=X-Remote-Group",
		"--requestheader-username-headers=X-Remote-User",
		"--service-account-issuer=" + issuer,
		"--api-audiences=" + issuer,
		"--service-account-key-file=" + p.ServiceAccountKey,
		"--service-account-signing-key-file=" + p.ServiceAccountKey,
		"--cert-dir=" + filepath.Join(a.cfg.ConfigDir, "cert"),
		"--profiling=false",
		// Open watches (our own scheduler's among them) would otherwise hold
		// the HTTP server's graceful shutdown for the whole request timeout
		// (60 s); with this, in-flight requests drain and the server closes
		// within 2 s, inside our 15 s stop budget.
		"--shutdown-send-retry-after=true",
	}
}

// Start completes the options and runs the server until Stop.
func (a *APIServer) Start(ctx context.Context) error {
	logger := klog.FromContext(ctx).WithValues("component", "apiserver")
	if err := writeFile(a.authnFile(), a.authenticationConfig()); err != nil {
		return err
	}
	if h := a.cfg.Hardening; h != nil {
		for path, content := range map[string]string{a.auditPolicyFile(): auditPolicy, a.admissionConfigFile(): h.admissionConfig()} {
			if err := writeFile(path, content); err != nil {
				return err
			}
		}
		if err := os.MkdirAll(filepath.Dir(h.AuditLog), 0o700); err != nil {
			return fmt.Errorf("create the audit log's directory: %w", err)
		}
	}
	if err := a.opts.GenericServerRunOptions.ComponentGlobalsRegistry.Set(); err != nil {
		return fmt.Errorf("apply feature gates: %w", err)
	}
	if a.cfg.Alone {
		// Upstream keeps the period in a package variable "so integration
		// tests can tune" it; one API server runs in this process.
		controlplaneapiserver.IdentityLeaseRenewIntervalPeriod = aloneIdentityLeaseRenewal
	}
	// The loopback clients would otherwise log every deprecation warning
	// the server sends to itself.
	rest.SetDefaultWarningHandler(rest.NoWarnings{})
	// `regente secrets-encrypt` waits for each change of the encryption
	// configuration to be loaded before its next step; upstream polls the
	// file once a minute. Reading and hashing a 1 KiB file every few
	// seconds costs nothing.
	encryptionconfigcontroller.EncryptionConfigFileChangePollDuration = encryptionConfigPoll
	return a.Runner.Start(klog.NewContext(ctx, logger), func(ctx context.Context) (func() error, error) {
		completed, err := a.opts.Complete(ctx)
		if err != nil {
			return nil, fmt.Errorf("complete kube-apiserver options: %w", err)
		}
		if errs := completed.Validate(); len(errs) != 0 {
			return nil, fmt.Errorf("validate kube-apiserver options (check --kube-apiserver-arg): %w", utilerrors.NewAggregate(errs))
		}
		return func() error { return a.run(ctx, completed) }, nil
	})
}

// run is upstream's app.Run with regente's handlers added to the server
// chain before it starts.
func (a *APIServer) run(ctx context.Context, opts options.CompletedOptions) error {
	if opts.InformerName == nil {
		name, err := cache.NewInformerName("kube-apiserver")
		if err != nil {
			return err
		}
		opts.InformerName = name
	}
	config, err := app.NewConfig(opts)
	if err != nil {
		return err
	}
	completed, err := config.Complete()
	if err != nil {
		return err
	}
	server, err := app.CreateServerChain(completed)
	if err != nil {
		return err
	}
	for path, h := range a.cfg.Handlers {
		server.GenericAPIServer.Handler.NonGoRestfulMux.Handle(path, h)
	}
	prepared, err := server.PrepareRun()
	if err != nil {
		return err
	}
	return prepared.Run(ctx)
}

// Ready waits for /readyz to answer ok.
func (a *APIServer) Ready(ctx context.Context) error {
	host := a.cfg.BindAddress
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	url := "https://" + net.JoinHostPort(host, strconv.Itoa(a.cfg.Port)) + "/readyz"
	return waitReady(ctx, url, a.cfg.PKI, a.Err())
}

// authenticationConfig lets anonymous requests reach only the health
// endpoints and regente's own handlers; every other anonymous request gets
// 401 rather than the 403 an RBAC-filtered anonymous user would get.
func (a *APIServer) authenticationConfig() string {
	paths := []string{"/livez", "/readyz", "/healthz"}
	paths = append(paths, slices.Sorted(maps.Keys(a.cfg.Handlers))...)
	var b strings.Builder
	b.WriteString("apiVersion: apiserver.config.k8s.io/v1\nkind: AuthenticationConfiguration\nanonymous:\n  enabled: true\n  conditions:\n")
	for _, p := range paths {
		fmt.Fprintf(&b, "  - path: %s\n", p)
	}
	return b.String()
}

func writeFile(path, content string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(path), err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
