//go:build integration

package integration

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// TestKill9KeepsAcknowledgedWrites kills the server with SIGKILL while 8
// clients create configmaps, restarts it, and checks that every create the
// API acknowledged is there.
func TestKill9KeepsAcknowledgedWrites(t *testing.T) {
	bin := requirements(t)
	s := newServer(t, bin)
	s.start()
	s.kubectl("create", "namespace", "durable")
	cfg := s.restConfig()
	cfg.QPS, cfg.Burst = 1000, 1000
	cfg.Timeout = 5 * time.Second
	client := kubernetes.NewForConfigOrDie(cfg)

	var (
		mu    sync.Mutex
		acked []string
		wg    sync.WaitGroup
	)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for w := 0; w < 8; w++ {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				name := fmt.Sprintf("w%d-%d", w, i)
				cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string]string{"i": name}}
				if _, err := client.CoreV1().ConfigMaps("durable").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
					return // the server is gone: stop writing
				}
				mu.Lock()
				acked = append(acked, name)
				mu.Unlock()
			}
		})
	}
	// Let writes flow, then kill while they are in flight.
	eventually(t, 60*time.Second, "2000 acknowledged writes", func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(acked) < 2000 {
			return fmt.Errorf("%d so far", len(acked))
		}
		return nil
	})
	s.kill()
	cancel()
	wg.Wait()
	mu.Lock()
	want := append([]string(nil), acked...)
	mu.Unlock()
	t.Logf("%d writes acknowledged before kill -9", len(want))

	s.start()
	list, err := s.client().CoreV1().ConfigMaps("durable").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, cm := range list.Items {
		have[cm.Name] = true
	}
	var lost []string
	for _, name := range want {
		if !have[name] {
			lost = append(lost, name)
		}
	}
	if len(lost) > 0 {
		t.Fatalf("%d of %d acknowledged writes lost after kill -9, e.g. %v", len(lost), len(want), lost[:min(5, len(lost))])
	}
}
