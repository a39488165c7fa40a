package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"regente.io/regente/pkg/datadir"
)

// benchIngress runs a single node with its add-ons and one HTTP server pod
// (netperf http) behind a Service and an Ingress, and measures the bundled
// ingress controller: its pod's memory idle and after load, and the
// requests/s and latency of keep-alive clients through it (node address,
// port 80, through ServiceLB) against the same load sent to the Service's
// ClusterIP straight. The clients run in the bench, on the same 2 cores.
func benchIngress(bin string, idle, load time.Duration) ([]row, error) {
	scratch, err := os.MkdirTemp("", "regente-bench-ingress-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(scratch)
	image, err := netperfArchive(scratch)
	if err != nil {
		return nil, err
	}
	s, err := newInstance(bin)
	if err != nil {
		return nil, err
	}
	s.agent = true
	imagesDir := datadir.New(filepath.Join(s.dir, "data"), "").Agent.ImagesDir
	if err := os.MkdirAll(imagesDir, 0o700); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(imagesDir, "netperf.tar"), image, 0o600); err != nil {
		return nil, err
	}
	begin := time.Now()
	if _, err := s.startToNodeReady(); err != nil {
		return nil, err
	}
	defer cleanupNode(s)
	defer s.stop()
	if _, err := s.addonsReady(begin); err != nil {
		return nil, err
	}
	client, err := s.client()
	if err != nil {
		return nil, err
	}
	clusterIP, err := createIngressBackend(client)
	if err != nil {
		return nil, err
	}
	nodeAddr, err := ingressAddress(client)
	if err != nil {
		return nil, err
	}
	through := "http://" + net.JoinHostPort(nodeAddr, "80") + "/"
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(time.Second) {
		if err := getOK(http.DefaultClient, through, "bench.test"); err == nil {
			break
		} else if time.Now().After(deadline) {
			logs, _ := exec.Command(bin, "kubectl", "--kubeconfig", s.kubeconfig, "-n", "kube-system", "logs", "deployment/ingress").CombinedOutput()
			ing, _ := exec.Command(bin, "kubectl", "--kubeconfig", s.kubeconfig, "get", "ingress,service,pods", "-A", "-o", "wide").CombinedOutput()
			return nil, fmt.Errorf("the ingress does not route bench.test: %w\n%s\n%s", err, ing, logs)
		}
	}
	fmt.Fprintf(os.Stderr, "idling %s for the ingress pod's memory\n", idle)
	time.Sleep(idle)
	idleMem, err := ingressMemory()
	if err != nil {
		return nil, err
	}
	rows := []row{
		{fmt.Sprintf("ingress pod RSS after %s idle (one Ingress)", idle), mib(idleMem["Rss"]), "lighter than k3s's Traefik"},
		{"  of which anonymous (heap, stacks)", mib(idleMem["Anonymous"]), "-"},
		{"  as PSS (its program's pages shared with CoreDNS and metrics-server)", mib(idleMem["Pss"]), "-"},
	}
	const conns = 16
	for _, target := range []struct{ what, url string }{
		{"through the ingress (node address :80, ServiceLB, ingress, ClusterIP)", through},
		{"straight to the Service's ClusterIP (baseline)", "http://" + net.JoinHostPort(clusterIP, "80") + "/"},
	} {
		fmt.Fprintf(os.Stderr, "loading %s for %s\n", target.url, load)
		n, errs, lat := httpLoad(target.url, "bench.test", conns, load)
		rows = append(rows, row{fmt.Sprintf("HTTP GETs %s, %d keep-alive clients, %s", target.what, conns, load),
			fmt.Sprintf("%.0f req/s, p50 %s, p99 %s, %d errors", float64(n)/load.Seconds(), percentile(lat, 50).Round(10*time.Microsecond), percentile(lat, 99).Round(10*time.Microsecond), errs), "-"})
	}
	loaded, err := ingressMemory()
	if err != nil {
		return nil, err
	}
	return append(rows, row{"ingress pod RSS after the load", mib(loaded["Rss"]), "-"}), nil
}

// createIngressBackend starts the HTTP server pod, its Service and an
// Ingress for host bench.test, and returns the Service's ClusterIP.
func createIngressBackend(client kubernetes.Interface) (string, error) {
	ctx := context.Background()
	labels := map[string]string{"app": "web"}
	deploy := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "web", Image: netperfImage, ImagePullPolicy: corev1.PullNever,
					Command: []string{"/netperf", "http", ":8080"},
				}}},
			},
		},
	}
	if _, err := client.AppsV1().Deployments("default").Create(ctx, deploy, metav1.CreateOptions{}); err != nil {
		return "", err
	}
	svc, err := client.CoreV1().Services("default").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec:       corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", err
	}
	prefix := networkingv1.PathTypePrefix
	_, err = client.NetworkingV1().Ingresses("default").Create(ctx, &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{{
			Host: "bench.test",
			IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{{
				Path: "/", PathType: &prefix,
				Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "web", Port: networkingv1.ServiceBackendPort{Number: 80}}},
			}}}},
		}}},
	}, metav1.CreateOptions{})
	return svc.Spec.ClusterIP, err
}

// ingressAddress waits for ServiceLB to give the ingress Service its
// address, the node's.
func ingressAddress(client kubernetes.Interface) (string, error) {
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(time.Second) {
		svc, err := client.CoreV1().Services("kube-system").Get(context.Background(), "ingress", metav1.GetOptions{})
		if err == nil && len(svc.Status.LoadBalancer.Ingress) > 0 {
			return svc.Status.LoadBalancer.Ingress[0].IP, nil
		}
	}
	return "", fmt.Errorf("the ingress Service got no load-balancer address in 2m")
}

// ingressMemory reads the smaps_rollup of the ingress controller's
// process, found by its name.
func ingressMemory() (map[string]int64, error) {
	comms, _ := filepath.Glob("/proc/[0-9]*/comm")
	for _, p := range comms {
		comm, _ := os.ReadFile(p)
		if strings.TrimSpace(string(comm)) != "ingress" {
			continue
		}
		pid, err := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		if err == nil {
			return memoryOf(pid)
		}
	}
	return nil, fmt.Errorf("no process named ingress: is the ingress add-on running?")
}

func getOK(client *http.Client, url, host string) error {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Host = host
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s (Host %s): %s %q", url, host, resp.Status, body)
	}
	return nil
}

// httpLoad runs conns clients, each GETting url in a loop for d over a
// keep-alive connection of its own, and returns the requests done, the
// errors and the latencies.
func httpLoad(url, host string, conns int, d time.Duration) (int, int, []time.Duration) {
	clients := make([]*http.Client, conns)
	for i := range clients {
		clients[i] = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	}
	lat, failed, _ := loadFor(conns, d, func(w, _ int) error { return getOK(clients[w], url, host) })
	return len(lat), failed, lat
}
