package config

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"regente.io/regente/pkg/datadir"
)

func TestDefaults(t *testing.T) {
	s := NewServer()
	fs := pflag.NewFlagSet("", pflag.ContinueOnError)
	s.AddFlags(fs)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	want := &Server{
		ConfigFile:                "/etc/regente/config.yaml",
		DataDir:                   "/var/lib/regente",
		RunDir:                    "/run/regente",
		BindAddress:               "0.0.0.0",
		HTTPSListenPort:           6443,
		ClusterCIDR:               "10.42.0.0/16",
		ServiceCIDR:               "10.43.0.0/16",
		ClusterDomain:             "cluster.local",
		WriteKubeconfig:           "/etc/regente/regente.yaml",
		WriteKubeconfigMode:       "0600",
		FlannelBackend:            "vxlan",
		SnapshotRetention:         5,
		DatastoreSaveInterval:     time.Hour,
		SnapshotScheduleCron:      "0 */12 * * *",
		S3:                        NewS3(),
		Node:                      Node{PrivateRegistry: "/etc/regente/registries.yaml"},
		SecretsEncryptionProvider: "aescbc",
	}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", s, want)
	}
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Usage == "" {
			t.Errorf("--%s has no usage text", f.Name)
		}
	})
}

func TestComplete(t *testing.T) {
	tests := []struct {
		name     string
		svc, dns string
		wantDNS  string
	}{
		{"default service CIDR", "10.43.0.0/16", "", "10.43.0.10"},
		{"IPv6", "fd00:43::/112", "", "fd00:43::a"},
		{"explicit DNS kept", "10.43.0.0/16", "10.43.0.53", "10.43.0.53"},
		{"bad CIDR left to Validate", "nope", "", ""},
		{"too small left to Validate", "10.43.0.0/29", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewServer()
			s.ServiceCIDR, s.ClusterDNS = tt.svc, tt.dns
			s.KubeAPIServerArgs = []string{"--v=2", "-a", "b=c"}
			if err := s.Complete(); err != nil {
				t.Fatal(err)
			}
			if s.ClusterDNS != tt.wantDNS {
				t.Errorf("ClusterDNS = %q, want %q", s.ClusterDNS, tt.wantDNS)
			}
			if want := []string{"v=2", "a", "b=c"}; !reflect.DeepEqual(s.KubeAPIServerArgs, want) {
				t.Errorf("KubeAPIServerArgs = %q, want %q", s.KubeAPIServerArgs, want)
			}
		})
	}
}

func TestParseComponentArgs(t *testing.T) {
	got := ParseComponentArgs([]string{"a=b", "c", "--d=e,f", "", "-g"})
	if want := []string{"--a=b", "--c", "--d=e,f", "--g"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestKubeconfigMode(t *testing.T) {
	for in, want := range map[string]os.FileMode{"0600": 0o600, "644": 0o644, "0777": 0o777, "abc": 0o600, "1777": 0o600} {
		s := NewServer()
		s.WriteKubeconfigMode = in
		if got := s.KubeconfigMode(); got != want {
			t.Errorf("KubeconfigMode(%q) = %o, want %o", in, got, want)
		}
	}
}

func TestLayout(t *testing.T) {
	s := NewServer()
	s.DataDir, s.RunDir = "/d", "/r"
	want := datadir.ServerPaths{
		ServerDir:       "/d/server",
		ConfigDir:       "/d/server/etc",
		DBDir:           "/d/server/db",
		SQLiteFile:      "/d/server/db/state.db",
		TLSDir:          "/d/server/tls",
		CredDir:         "/d/server/cred",
		AdminKubeconfig: "/d/server/cred/admin.kubeconfig",
		ManifestsDir:    "/d/server/manifests",
		StaticDir:       "/d/server/static",
		HelmDir:         "/d/server/helm",
		EtcdDir:         "/d/server/db/etcd",
		SnapshotDir:     "/d/server/db/snapshots",
		TokenFile:       "/d/server/token",
		NodeToken:       "/d/server/node-token",
		AgentToken:      "/d/server/agent-token",
		KineSocket:      "/d/server/kine.sock",
		LockFile:        "/d/server/regente.lock",
		RevokedFile:     "/d/server/token-revoked",
		AuditLog:        "/d/server/logs/audit.log",
	}
	if got := s.Paths(); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	s.SnapshotDir = "/snaps"
	l := s.Layout()
	if l.Server.SnapshotDir != "/snaps" || l.Run.ContainerdSocket != "/r/containerd/containerd.sock" || l.Agent.TLSDir != "/d/agent/tls" {
		t.Errorf("layout %+v: want --etcd-snapshot-dir, the run dir's socket and the agent's TLS dir", l)
	}
}

// kine picks its driver by the endpoint's scheme, case-sensitively; the
// scheme the user typed in capitals must reach it in lower case.
func TestCompleteLowersDatastoreScheme(t *testing.T) {
	s := NewServer()
	s.DatastoreEndpoint = "POSTGRES://User:Pw@Host/DB"
	if err := s.Complete(); err != nil {
		t.Fatal(err)
	}
	if s.DatastoreEndpoint != "postgres://User:Pw@Host/DB" {
		t.Errorf("endpoint %q, want the scheme alone lower-cased", s.DatastoreEndpoint)
	}
}

func TestProfile(t *testing.T) {
	s := NewServer()
	s.Profile = "cis"
	if err := s.Complete(); err != nil {
		t.Fatal(err)
	}
	if !s.SecretsEncryption || !s.KernelDefaultsProtected() {
		t.Errorf("--profile cis: secrets encryption %v, kernel defaults protected %v; want both", s.SecretsEncryption, s.KernelDefaultsProtected())
	}
	if err := s.Validate(); err != nil {
		t.Errorf("--profile cis: %v", err)
	}
	s = NewServer()
	s.Profile = "CIS-1.9"
	if err := s.Complete(); err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(); err == nil || !strings.Contains(err.Error(), `--profile "CIS-1.9" is not one of [cis]`) {
		t.Errorf("--profile CIS-1.9: got %v", err)
	}
}
