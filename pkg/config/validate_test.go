package config

import (
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(s *Server)
		want    []string // substrings; none means valid
		notWant []string
	}{
		{name: "defaults are valid", edit: func(s *Server) {}},
		{
			name: "IPv6 single-stack is valid",
			edit: func(s *Server) {
				s.ClusterCIDR, s.ServiceCIDR, s.BindAddress, s.NodeIPs = "fd00:42::/56", "fd00:43::/112", "::", []string{"fd00::1"}
			},
		},
		{
			name: "supported endpoints and args are valid",
			edit: func(s *Server) {
				s.DatastoreEndpoint = "mysql://u:p@tcp(db:3306)/k8s"
				s.KubeAPIServerArgs = []string{"v=2", "--enable-bootstrap-token-auth", "a=b=c"}
				s.WriteKubeconfigMode = "644"
				s.TLSSANs = []string{"k8s.example.com", "192.168.1.10"}
			},
		},
		{
			name: "bad CIDR",
			edit: func(s *Server) { s.ClusterCIDR = "10.42.0.0" },
			want: []string{"--cluster-cidr", `"10.42.0.0"`, "not a CIDR", "10.42.0.0/16"},
		},
		{
			name: "non-canonical CIDR",
			edit: func(s *Server) { s.ClusterCIDR = "10.42.0.1/16" },
			want: []string{"--cluster-cidr", "did you mean 10.42.0.0/16?"},
		},
		{
			name: "dual-stack list",
			edit: func(s *Server) { s.ServiceCIDR = "10.43.0.0/16,fd00::/112" },
			want: []string{"--service-cidr", "only one range"},
		},
		{
			name: "loopback bind address with the agent",
			edit: func(s *Server) { s.BindAddress = "127.0.0.1" },
			want: []string{"--bind-address 127.0.0.1 is loopback", "--disable-agent"},
		},
		{
			name: "loopback bind address without the agent is fine",
			edit: func(s *Server) { s.BindAddress, s.DisableAgent = "127.0.0.1", true },
		},
		{
			name: "registry with a scheme",
			edit: func(s *Server) { s.SystemDefaultRegistry = "https://mirror.example.com" },
			want: []string{"--system-default-registry", "without a scheme"},
		},
		{
			name: "unknown flannel backend",
			edit: func(s *Server) { s.FlannelBackend = "wireguard" },
			want: []string{"--flannel-backend \"wireguard\"", "vxlan, host-gw, none"},
		},
		{
			name: "overlapping CIDRs",
			edit: func(s *Server) {
				s.ClusterCIDR, s.ServiceCIDR, s.ClusterDNS = "10.0.0.0/8", "10.43.0.0/16", "10.43.0.10"
			},
			want: []string{"--cluster-cidr 10.0.0.0/8", "--service-cidr 10.43.0.0/16", "overlap", "disjoint"},
		},
		{
			name: "service CIDR too small",
			edit: func(s *Server) { s.ServiceCIDR, s.ClusterDNS = "10.43.0.0/29", "" },
			want: []string{"--service-cidr 10.43.0.0/29", "too small", "/28"},
		},
		{
			name: "DNS outside service CIDR",
			edit: func(s *Server) { s.ClusterDNS = "10.44.0.10" },
			want: []string{"--cluster-dns 10.44.0.10", "outside --service-cidr 10.43.0.0/16", "10.43.0.10"},
		},
		{
			name: "DNS on the kubernetes service IP",
			edit: func(s *Server) { s.ClusterDNS = "10.43.0.1" },
			want: []string{"--cluster-dns 10.43.0.1", "kubernetes API service", "10.43.0.10"},
		},
		{
			name: "DNS not an IP",
			edit: func(s *Server) { s.ClusterDNS = "dns" },
			want: []string{"--cluster-dns", `"dns"`, "not an IP"},
		},
		{
			name: "port zero",
			edit: func(s *Server) { s.HTTPSListenPort = 0 },
			want: []string{"--https-listen-port 0", "between 1 and 65535"},
		},
		{
			name: "port too high",
			edit: func(s *Server) { s.HTTPSListenPort = 70000 },
			want: []string{"--https-listen-port 70000"},
		},
		{
			name: "bad IPs",
			edit: func(s *Server) {
				s.BindAddress, s.AdvertiseAddress, s.NodeIPs = "localhost", "1.2.3", []string{"10.0.0.1", "x"}
			},
			want: []string{`--bind-address "localhost"`, `--advertise-address "1.2.3"`, `--node-ip "x"`},
		},
		{
			name: "tls-san with scheme",
			edit: func(s *Server) { s.TLSSANs = []string{"https://k8s.example.com:6443/"} },
			want: []string{"--tls-san", "without a scheme", `"k8s.example.com"`},
		},
		{
			name: "tls-san with space, comma, empty",
			edit: func(s *Server) { s.TLSSANs = []string{"a b", "a,b", ""} },
			want: []string{`"a b" contains whitespace`, `"a,b" contains a comma`, "empty entry"},
		},
		{
			name: "relative data dir",
			edit: func(s *Server) { s.DataDir = "data" },
			want: []string{`--data-dir "data"`, "absolute path"},
		},
		{
			name: "empty data dir",
			edit: func(s *Server) { s.DataDir = "" },
			want: []string{"--data-dir is empty"},
		},
		{
			name: "data dir too long for the kine socket",
			edit: func(s *Server) { s.DataDir = "/" + strings.Repeat("d", 100) },
			want: []string{"--data-dir", "too long", "unix socket"},
		},
		{
			name: "data dir too long for the kubelet's sockets",
			edit: func(s *Server) { s.DataDir = "/" + strings.Repeat("d", 70) },
			want: []string{"--data-dir", "too long", "pod-resources", "unix socket"},
		},
		{
			name: "a long data dir is fine without the agent",
			edit: func(s *Server) { s.DataDir, s.DisableAgent = "/"+strings.Repeat("d", 70), true },
		},
		{
			name: "bad mode digits",
			edit: func(s *Server) { s.WriteKubeconfigMode = "0800" },
			want: []string{`--write-kubeconfig-mode "0800"`, "0600"},
		},
		{
			name: "mode above 0777",
			edit: func(s *Server) { s.WriteKubeconfigMode = "1777" },
			want: []string{`--write-kubeconfig-mode "1777"`},
		},
		{
			name:    "unknown datastore scheme",
			edit:    func(s *Server) { s.DatastoreEndpoint = "etcd://root:hunter2@db:2379" },
			want:    []string{"--datastore-endpoint", `scheme "etcd"`, "postgres", "mysql", "https"},
			notWant: []string{"hunter2"},
		},
		{
			name:    "datastore endpoint without scheme",
			edit:    func(s *Server) { s.DatastoreEndpoint = "root:hunter2@tcp(db:3306)/k8s" },
			want:    []string{"--datastore-endpoint", "root:***@tcp(db:3306)/k8s", "postgres://user:pass@host:5432/db"},
			notWant: []string{"hunter2"},
		},
		{
			name:    "cluster-init with an external datastore",
			edit:    func(s *Server) { s.ClusterInit, s.DatastoreEndpoint = true, "postgres://u:hunter2@db/k" },
			want:    []string{"--cluster-init", "u:***@db/k", "only one"},
			notWant: []string{"hunter2"},
		},
		{
			name:    "in-memory datastore with an external one",
			edit:    func(s *Server) { s.DatastoreInMemory, s.DatastoreEndpoint = true, "postgres://u:hunter2@db/k" },
			want:    []string{"--datastore-in-memory", "u:***@db/k", "drop one"},
			notWant: []string{"hunter2"},
		},
		{
			name: "in-memory datastore with embedded etcd",
			edit: func(s *Server) { s.DatastoreInMemory, s.ClusterInit = true, true },
			want: []string{"--datastore-in-memory", "embedded etcd"},
		},
		{
			name: "in-memory datastore saved too often",
			edit: func(s *Server) { s.DatastoreInMemory, s.DatastoreSaveInterval = true, 100*time.Millisecond },
			want: []string{"--datastore-save-interval 100ms", "at least 1s"},
		},
		{
			name: "in-memory datastore",
			edit: func(s *Server) { s.DatastoreInMemory, s.DatastoreSaveInterval = true, 5*time.Minute },
		},
		{
			name: "cluster-init and server",
			edit: func(s *Server) { s.ClusterInit, s.Server, s.Token = true, "https://10.0.0.1:6443", "t" },
			want: []string{"--cluster-init starts a new cluster and --server joins"},
		},
		{
			name: "server without a datastore joins embedded etcd",
			edit: func(s *Server) { s.Server, s.Token = "https://10.0.0.1:6443", "t" },
		},
		{
			name: "datastore TLS without an endpoint",
			edit: func(s *Server) { s.DatastoreCAFile = "/etc/hostname" },
			want: []string{"--datastore-cafile configures TLS to an external datastore"},
		},
		{
			name: "datastore cert without key, and a missing CA",
			edit: func(s *Server) {
				s.DatastoreEndpoint, s.DatastoreCertFile, s.DatastoreCAFile = "postgres://db/k", "/etc/hostname", "/nonexistent/ca.pem"
			},
			want: []string{"--datastore-certfile and --datastore-keyfile go together", "--datastore-cafile /nonexistent/ca.pem"},
		},
		{
			name: "arg without a name",
			edit: func(s *Server) { s.KubeAPIServerArgs = []string{"=x"}; s.KubeSchedulerArgs = []string{""} },
			want: []string{`--kube-apiserver-arg "=x": missing the flag name before "="`, `--kube-scheduler-arg ""`},
		},
		{
			name: "all problems at once",
			edit: func(s *Server) { s.HTTPSListenPort, s.DataDir = -1, "rel" },
			want: []string{"--https-listen-port", "--data-dir"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewServer()
			tt.edit(s)
			if err := s.Complete(); err != nil {
				t.Fatalf("Complete: %v", err)
			}
			err := s.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate succeeded, want an error")
			}
			t.Log(err)
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(err.Error(), w) {
					t.Errorf("error %q contains %q", err, w)
				}
			}
		})
	}
}
