//go:build integration

package integration

import (
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestAddons runs a node with its add-ons, which must come up from the
// images regente carries with no pull, and the manifests dir.
func TestAddons(t *testing.T) {
	bin := requirements(t)
	const image = "regente.invalid/busybox:test"
	// CoreDNS forwards to the resolvers in the kubelet's resolv.conf: point
	// it at a resolver this test runs on the node's own address, which
	// knows one name nothing else does.
	nodeIP := defaultRouteIP(t)
	serveHostResolver(t, net.JoinHostPort(nodeIP, "53"), "only-the-host.test", net.IPv4(192, 0, 2, 123))
	resolvConf := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(resolvConf, []byte("nameserver "+nodeIP+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := newNode(t, bin, map[string][]byte{"busybox.tar": busyboxImage(t, image)}, "--kubelet-arg=resolv-conf="+resolvConf)
	// k3s users extend CoreDNS with the coredns-custom ConfigMap; from the
	// manifests dir it is there before CoreDNS starts.
	manifests := filepath.Join(s.dataDir, "server", "manifests")
	if err := os.MkdirAll(manifests, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(manifests, "coredns-custom.yaml"), []byte(corednsCustom), 0o600); err != nil {
		t.Fatal(err)
	}
	s.start()
	s.waitNodeReady(t)
	// The role label k3s gives a server's node; no etcd label on SQLite.
	eventually(t, 30*time.Second, "the server's node labeled control-plane", func() error {
		out, err := s.kubectlErr("get", "nodes", "-o", `jsonpath={.items[0].metadata.labels}`)
		if err != nil || !strings.Contains(out, `"node-role.kubernetes.io/control-plane":"true"`) || strings.Contains(out, "node-role.kubernetes.io/etcd") {
			return fmt.Errorf("labels: %s (%v)", out, err)
		}
		return nil
	})
	if _, err := s.kubectlErr("-n", "kube-system", "rollout", "status", "deployment/coredns", "--timeout=120s"); err != nil {
		describe, _ := s.kubectlErr("-n", "kube-system", "describe", "pods")
		logs, _ := s.kubectlErr("-n", "kube-system", "logs", "deployment/coredns")
		t.Fatalf("coredns not ready: %v\n%s\n%s", err, describe, logs)
	}

	t.Run("add-on pods run with no pull", func(t *testing.T) {
		s.kubectl("-n", "kube-system", "rollout", "status", "deployment/metrics-server", "--timeout=120s")
		if out := s.kubectl("get", "events", "-A", "--field-selector=reason=Pulling", "-o", "name"); out != "" {
			t.Errorf("images were pulled: %s", out)
		}
		s.kubectl("-n", "kube-system", "rollout", "status", "deployment/local-path-provisioner", "--timeout=120s")
		s.kubectl("-n", "kube-system", "rollout", "status", "deployment/ingress", "--timeout=120s")
		for _, addon := range []string{"coredns", "metrics-server", "local-path-provisioner", "ingress"} { // svclb: in its subtest
			img := s.kubectl("-n", "kube-system", "get", "deployment/"+addon, "-o", "jsonpath={.spec.template.spec.containers[0].image}")
			if !strings.HasPrefix(img, "regente.invalid/"+addon+":") {
				t.Errorf("%s runs %q, not the embedded image", addon, img)
			}
		}
	})

	t.Run("DNS", func(t *testing.T) {
		s.kubectl("run", "dnsclient", "--image="+image, "--image-pull-policy=Never", "--", "sleep", "3600")
		s.kubectl("create", "service", "clusterip", "dnstarget", "--tcp=80:80")
		s.kubectl("wait", "pod/dnsclient", "--for=condition=Ready", "--timeout=60s")
		nodeName := s.kubectl("get", "nodes", "-o", "jsonpath={.items[0].metadata.name}")
		for name, want := range map[string]string{
			// Busybox's nslookup applies no search domains: full names.
			"kubernetes.default.svc.cluster.local": s.kubectl("get", "service", "kubernetes", "-o", "jsonpath={.spec.clusterIP}"),
			"dnstarget.default.svc.cluster.local":  s.kubectl("get", "service", "dnstarget", "-o", "jsonpath={.spec.clusterIP}"),
			nodeName + ".":                         nodeIP, // absolute: no search domains
			"only-the-host.test":                   "192.0.2.123",
			"zone.custom.test":                     "192.0.2.77", // coredns-custom's custom.server
		} {
			eventually(t, 60*time.Second, "pod resolves "+name, func() error {
				out, err := s.kubectlErr("exec", "dnsclient", "--", "nslookup", name)
				if err != nil || !strings.Contains(out, "Address: "+want) {
					return fmt.Errorf("nslookup %s (want %s): %v\n%s", name, want, err, out)
				}
				return nil
			})
		}
	})

	t.Run("kubectl top", func(t *testing.T) {
		for _, what := range []string{"nodes", "pods"} {
			eventually(t, 120*time.Second, "kubectl top "+what, func() error {
				out, err := s.kubectlErr("top", what, "-A", "--no-headers")
				if what == "nodes" {
					out, err = s.kubectlErr("top", what, "--no-headers")
				}
				// "<name> <cpu>m <cpu%> <memory>Mi <memory%>" for nodes,
				// "<ns> <name> <cpu>m <memory>Mi" for pods.
				if err != nil || !strings.Contains(out, "Mi") || !strings.Contains(out, "m ") {
					return fmt.Errorf("%v: %q", err, out)
				}
				return nil
			})
		}
	})

	t.Run("LoadBalancer answers on the node address", func(t *testing.T) {
		s.kubectl("create", "deployment", "lbweb", "--image="+image, "--", "sh", "-c",
			"mkdir -p /www && echo hello-lb > /www/index.html && exec httpd -f -p 8080 -h /www")
		s.kubectl("expose", "deployment", "lbweb", "--type=LoadBalancer", "--port=18080", "--target-port=8080")
		eventually(t, 90*time.Second, "LoadBalancer ingress is the node IP", func() error {
			out, err := s.kubectlErr("get", "service", "lbweb", "-o", "jsonpath={.status.loadBalancer.ingress[*].ip}")
			if err != nil || out != nodeIP {
				return fmt.Errorf("ingress %q, want %s (%v)", out, nodeIP, err)
			}
			return nil
		})
		eventually(t, 60*time.Second, "the host reaches the LoadBalancer", func() error {
			err := httpGetEquals("http://"+net.JoinHostPort(nodeIP, "18080")+"/", "hello-lb")
			if err != nil {
				pods, _ := s.kubectlErr("-n", "kube-system", "get", "pods", "-o", "wide")
				nat, _ := exec.Command("sh", "-c", "iptables-save -t nat | grep -i -e 18080 -e HOSTPORT | head -20").CombinedOutput()
				return fmt.Errorf("%v\n%s\n%s", err, pods, nat)
			}
			return nil
		})
		// The port is the Service's own, not a NodePort: the svclb pod,
		// from the embedded image, carries it.
		img := s.kubectl("-n", "kube-system", "get", "daemonsets", "-l", "svccontroller.regente.io/svcname=lbweb",
			"-o", "jsonpath={.items[0].spec.template.spec.containers[0].image}")
		if !strings.HasPrefix(img, "regente.invalid/svclb:") {
			t.Errorf("svclb DaemonSet runs %q", img)
		}

		// A changed port moves the relay; a deleted Service takes its
		// DaemonSet with it.
		s.kubectl("patch", "service", "lbweb", "--type=json", "-p", `[{"op":"replace","path":"/spec/ports/0/port","value":18081}]`)
		eventually(t, 60*time.Second, "the host reaches the LoadBalancer on its new port", func() error {
			return httpGetEquals("http://"+net.JoinHostPort(nodeIP, "18081")+"/", "hello-lb")
		})
		s.kubectl("delete", "service", "lbweb")
		eventually(t, 30*time.Second, "the relay DaemonSet goes with the Service", func() error {
			if out := s.kubectl("-n", "kube-system", "get", "daemonsets", "-l", "svccontroller.regente.io/svcname=lbweb", "-o", "name"); out != "" {
				return fmt.Errorf("still there: %s", out)
			}
			return nil
		})
	})

	t.Run("Ingress routes by host and path, with TLS from a Secret", func(t *testing.T) {
		testIngress(t, s, image, nodeIP)
	})

	t.Run("PVC bound, data kept across pods, folder deleted with the claim", func(t *testing.T) {
		s.apply(`apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 10Mi}}
`)
		writer := func(name, command string) string {
			return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %s}
spec:
  restartPolicy: Never
  containers:
  - name: main
    image: %s
    imagePullPolicy: Never
    command: ["sh", "-c", %q]
    volumeMounts: [{name: data, mountPath: /data}]
  volumes:
  - name: data
    persistentVolumeClaim: {claimName: data}
`, name, image, command)
		}
		s.apply(writer("writer", "echo kept > /data/f"))
		s.kubectl("wait", "pod/writer", "--for=jsonpath={.status.phase}=Succeeded", "--timeout=90s")
		if phase := s.kubectl("get", "pvc", "data", "-o", "jsonpath={.status.phase}"); phase != "Bound" {
			t.Fatalf("PVC phase %q", phase)
		}
		pv := s.kubectl("get", "pvc", "data", "-o", "jsonpath={.spec.volumeName}")
		folder := s.kubectl("get", "pv", pv, "-o", "jsonpath={.spec.hostPath.path}")
		if !strings.HasPrefix(folder, filepath.Join(s.dataDir, "storage")+"/") {
			t.Errorf("volume folder %q not under the data dir's storage", folder)
		}
		s.kubectl("delete", "pod", "writer")
		s.apply(writer("reader", "cat /data/f"))
		s.kubectl("wait", "pod/reader", "--for=jsonpath={.status.phase}=Succeeded", "--timeout=60s")
		if out := strings.TrimSpace(s.kubectl("logs", "reader")); out != "kept" {
			t.Errorf("data after a new pod: %q", out)
		}
		s.kubectl("delete", "pod", "reader")
		s.kubectl("delete", "pvc", "data")
		eventually(t, 90*time.Second, "reclaim Delete removes the folder", func() error {
			if _, err := os.Stat(folder); !os.IsNotExist(err) {
				return fmt.Errorf("%s still there: %v", folder, err)
			}
			return nil
		})
	})

	t.Run("manifests dir applies, updates, prunes and reports bad files", func(t *testing.T) {
		dir := filepath.Join(s.dataDir, "server", "manifests")
		write := func(name, body string) {
			t.Helper()
			if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		cm := func(name, value string) string {
			return fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: %s, namespace: default}\ndata: {v: %q}\n", name, value)
		}
		value := func(name string) string {
			out, _ := s.kubectlErr("get", "configmap", name, "-o", "jsonpath={.data.v}")
			return out
		}
		write("app.yaml", cm("m1", "one")+"---\n"+cm("m2", "two"))
		eventually(t, 30*time.Second, "new file applied", func() error {
			if value("m1") != "one" || value("m2") != "two" {
				return fmt.Errorf("m1=%q m2=%q", value("m1"), value("m2"))
			}
			return nil
		})
		write("app.yaml", cm("m1", "changed"))
		write("bad.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: [unclosed\n")
		write("other.yaml", cm("m3", "three"))
		eventually(t, 30*time.Second, "changed file re-applied, dropped object deleted, bad file skipped", func() error {
			if _, err := s.kubectlErr("get", "configmap", "m2"); err == nil {
				return fmt.Errorf("m2 still exists")
			}
			if value("m1") != "changed" || value("m3") != "three" {
				return fmt.Errorf("m1=%q m3=%q", value("m1"), value("m3"))
			}
			if !strings.Contains(s.log.String(), `file="bad.yaml"`) {
				return fmt.Errorf("the log does not name bad.yaml")
			}
			return nil
		})
		if err := os.Remove(filepath.Join(dir, "app.yaml")); err != nil {
			t.Fatal(err)
		}
		eventually(t, 30*time.Second, "deleted file's objects deleted", func() error {
			if _, err := s.kubectlErr("get", "configmap", "m1"); err == nil {
				return fmt.Errorf("m1 still exists")
			}
			return nil
		})
	})

	t.Run("--disable removes coredns, servicelb and (as k3s's traefik) the ingress; a .skip marker keeps an edited add-on", func(t *testing.T) {
		// Edit two staged add-ons; only the one with a .skip marker keeps
		// the edit across the restart, which re-stages the others.
		dir := filepath.Join(s.dataDir, "server", "manifests")
		edit := func(file, configMap string) {
			t.Helper()
			f, err := os.OpenFile(filepath.Join(dir, file), os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(f, "\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: %s, namespace: kube-system}\n", configMap)
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
		}
		edit("local-storage.yaml", "kept-edit")
		if err := os.WriteFile(filepath.Join(dir, "local-storage.yaml.skip"), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		edit("metrics-server.yaml", "overwritten-edit")
		eventually(t, 30*time.Second, "edited add-ons applied", func() error {
			for _, cm := range []string{"kept-edit", "overwritten-edit"} {
				if _, err := s.kubectlErr("-n", "kube-system", "get", "configmap", cm); err != nil {
					return err
				}
			}
			return nil
		})

		if code, _ := s.stop(); code != 0 {
			t.Fatalf("stop exit code %d:\n%s", code, tail(s.log.String()))
		}
		s.args = append(s.args, "--disable=coredns,servicelb,traefik")
		s.start()
		eventually(t, 60*time.Second, "re-staged add-on drops the edit, skipped one keeps it", func() error {
			if _, err := s.kubectlErr("-n", "kube-system", "get", "configmap", "overwritten-edit"); err == nil {
				return fmt.Errorf("configmap overwritten-edit survived re-staging of metrics-server.yaml")
			}
			if _, err := s.kubectlErr("-n", "kube-system", "get", "configmap", "kept-edit"); err != nil {
				return fmt.Errorf("local-storage.yaml.skip did not keep the edit: %v", err)
			}
			return nil
		})
		if data, err := os.ReadFile(filepath.Join(dir, "local-storage.yaml")); err != nil || !strings.Contains(string(data), "kept-edit") {
			t.Errorf("local-storage.yaml lost the user's edit despite the .skip marker (%v)", err)
		}
		eventually(t, 60*time.Second, "coredns deployment deleted", func() error {
			if _, err := s.kubectlErr("-n", "kube-system", "get", "deployment/coredns"); err == nil {
				return fmt.Errorf("still there")
			}
			return nil
		})
		eventually(t, 30*time.Second, "svclb DaemonSets deleted", func() error {
			if out := s.kubectl("-n", "kube-system", "get", "daemonsets", "-l", "svccontroller.regente.io/svcname", "-o", "name"); out != "" {
				return fmt.Errorf("still there: %s", out)
			}
			return nil
		})
		eventually(t, 60*time.Second, "the ingress controller and its classes deleted", func() error {
			left, err := s.kubectlErr("-n", "kube-system", "get", "--ignore-not-found", "-o", "name",
				"ingressclass/regente", "ingressclass/traefik", "clusterrole/regente:ingress", "clusterrolebinding/regente:ingress",
				"deployment/ingress", "service/ingress", "serviceaccount/ingress")
			if err != nil || left != "" {
				return fmt.Errorf("still there: %s (%v)", left, err)
			}
			return nil
		})
		for _, file := range []string{"coredns.yaml", "ingress.yaml"} {
			if _, err := os.Stat(filepath.Join(s.dataDir, "server", "manifests", file)); !os.IsNotExist(err) {
				t.Errorf("%s still staged: %v", file, err)
			}
		}
	})
}

// defaultRouteIP is this machine's address on its default route, the one
// regente picks as node IP.
func defaultRouteIP(t *testing.T) string {
	t.Helper()
	route, err := exec.Command("ip", "-4", "-o", "route", "show", "default").Output()
	fields := strings.Fields(string(route))
	dev := ""
	for i, f := range fields {
		if f == "dev" && i+1 < len(fields) {
			dev = fields[i+1]
		}
	}
	if err != nil || dev == "" {
		t.Fatalf("no default route: %q %v", route, err)
	}
	addr, err := exec.Command("ip", "-4", "-o", "addr", "show", "dev", dev).Output()
	fields = strings.Fields(string(addr))
	for i, f := range fields {
		if f == "inet" && i+1 < len(fields) {
			return strings.Split(fields[i+1], "/")[0]
		}
	}
	t.Fatalf("no IPv4 address on %s: %q %v", dev, addr, err)
	return ""
}

// serveHostResolver answers DNS queries on addr (UDP): an A record for
// name, NXDOMAIN for anything else. It stands in for the host's resolver.
func serveHostResolver(t *testing.T, addr, name string, ip net.IP) {
	t.Helper()
	conn, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Fatalf("listen for DNS on %s: %v", addr, err)
	}
	t.Cleanup(func() { conn.Close() })
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			if resp := dnsAnswer(buf[:n], name, ip); resp != nil {
				conn.WriteTo(resp, from)
			}
		}
	}()
}

// dnsAnswer builds the reply to one query (RFC 1035 wire format).
func dnsAnswer(query []byte, name string, ip net.IP) []byte {
	if len(query) < 12 {
		return nil
	}
	i := 12
	var labels []string
	for i < len(query) && query[i] != 0 {
		l := int(query[i])
		if i+1+l > len(query) {
			return nil
		}
		labels = append(labels, string(query[i+1:i+1+l]))
		i += 1 + l
	}
	if i+5 > len(query) {
		return nil
	}
	qtype := binary.BigEndian.Uint16(query[i+1:])
	resp := append([]byte{}, query[:2]...) // ID
	resp = append(resp, 0x81, 0x80)        // response, recursion desired and available
	resp = append(resp, 0, 1, 0, 0, 0, 0, 0, 0)
	known := strings.EqualFold(strings.Join(labels, "."), name)
	if !known {
		resp[3] |= 3 // NXDOMAIN
	}
	resp = append(resp, query[12:i+5]...) // the question
	if known && qtype == 1 {
		resp[7] = 1                                                  // one answer
		resp = append(resp, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4) // name → question, A, IN, TTL 60, 4 bytes
		resp = append(resp, ip.To4()...)
	}
	return resp
}

// corednsCustom adds a zone to CoreDNS through the coredns-custom
// ConfigMap, as k3s users do: its *.server keys are imported as server
// blocks of their own.
const corednsCustom = `apiVersion: v1
kind: ConfigMap
metadata:
  name: coredns-custom
  namespace: kube-system
data:
  custom.server: |
    custom.test:53 {
        hosts {
            192.0.2.77 zone.custom.test
        }
    }
`
