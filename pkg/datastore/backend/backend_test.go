package backend

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestResolve(t *testing.T) {
	withMember := t.TempDir()
	if err := os.MkdirAll(filepath.Join(withMember, "member", "wal"), 0o700); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		flags  Flags
		want   Choice
		shared bool
	}{
		{"default", Flags{EtcdDir: t.TempDir()}, Choice{Kind: SQLite}, false},
		{"user's sqlite file", Flags{Endpoint: "SQLITE:///srv/x.db"}, Choice{Kind: UserSQLite, Endpoint: "sqlite:///srv/x.db"}, false},
		{"postgres, any case", Flags{Endpoint: "POSTGRES://User:Pw@Host/DB"}, Choice{Kind: ExternalSQL, Endpoint: "postgres://User:Pw@Host/DB"}, true},
		{"mysql DSN", Flags{Endpoint: "mysql://u:p@tcp(db:3306)/k8s"}, Choice{Kind: ExternalSQL, Endpoint: "mysql://u:p@tcp(db:3306)/k8s"}, true},
		{"external etcd", Flags{Endpoint: "https://10.0.0.1:2379"}, Choice{Kind: ExternalEtcd, Endpoint: "https://10.0.0.1:2379"}, true},
		{"cluster-init", Flags{ClusterInit: true}, Choice{Kind: EmbeddedEtcd, Etcd: EtcdInit}, true},
		{"join", Flags{JoinServer: "https://10.0.0.1:6443"}, Choice{Kind: EmbeddedEtcd, Etcd: EtcdJoin}, true},
		{"restart of a member", Flags{EtcdDir: withMember}, Choice{Kind: EmbeddedEtcd, Etcd: EtcdRestart}, true},
		{"an endpoint wins over a member on disk", Flags{Endpoint: "postgres://db/k", EtcdDir: withMember}, Choice{Kind: ExternalSQL, Endpoint: "postgres://db/k"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Resolve(tt.flags)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("Resolve = %+v, want %+v", got, tt.want)
			}
			if got.Shared() != tt.shared {
				t.Errorf("Shared = %t, want %t", got.Shared(), tt.shared)
			}
		})
	}
}

func TestResolveRefusesBadEndpoints(t *testing.T) {
	for endpoint, want := range map[string][]string{
		"root:hunter2@tcp(db:3306)/k8s": {"not a URL", "scheme://"},
		"etcd://root:hunter2@db:2379":   {"unsupported scheme \"etcd\"", "postgres", "mysql"},
	} {
		_, err := Resolve(Flags{Endpoint: endpoint})
		if err == nil {
			t.Fatalf("Resolve(%q) succeeded", endpoint)
		}
		for _, w := range append(want, "--datastore-endpoint") {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("Resolve(%q): %v, want it to mention %q", endpoint, err, w)
			}
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Resolve(%q) leaks the password: %v", endpoint, err)
		}
	}
}
