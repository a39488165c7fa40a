package agent

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
)

// pressureCheckInterval is how often the node's conditions are read once
// it is Ready. The kubelet itself checks its thresholds every 10 s.
const pressureCheckInterval = 10 * time.Second

// pressureChange is a pressure condition of the node that began or ended.
type pressureChange struct {
	condition corev1.NodeConditionType
	began     bool
	message   string // the kubelet's
}

// pressureChanges compares the node's pressure conditions with those in
// underPressure, which it updates, and returns what began or ended.
// Under pressure the kubelet rejects new pods (they end Failed, reason
// Evicted), evicts running ones, and the node is tainted: without a line
// in regente's own log, a user sees only pods failing.
func pressureChanges(underPressure map[corev1.NodeConditionType]bool, conditions []corev1.NodeCondition) []pressureChange {
	var changes []pressureChange
	for _, c := range conditions {
		switch c.Type {
		case corev1.NodeDiskPressure, corev1.NodeMemoryPressure, corev1.NodePIDPressure:
		default:
			continue
		}
		now := c.Status == corev1.ConditionTrue
		if now != underPressure[c.Type] {
			underPressure[c.Type] = now
			changes = append(changes, pressureChange{condition: c.Type, began: now, message: c.Message})
		}
	}
	return changes
}

// pressureFix says what lifts a pressure condition; for disk it gives the
// free space of the filesystem holding kubeletDir, which the kubelet's
// nodefs threshold is a share of.
func pressureFix(condition corev1.NodeConditionType, kubeletDir string) string {
	switch condition {
	case corev1.NodeDiskPressure:
		free := "unknown"
		var st unix.Statfs_t
		if err := unix.Statfs(kubeletDir, &st); err == nil && st.Blocks > 0 {
			avail, total := st.Bavail*uint64(st.Bsize), st.Blocks*uint64(st.Bsize)
			free = fmt.Sprintf("%.1f GiB of %.1f GiB (%.1f%%)", float64(avail)/(1<<30), float64(total)/(1<<30), 100*float64(st.Bavail)/float64(st.Blocks))
		}
		return fmt.Sprintf("free space on the filesystem of %s (free: %s; the kubelet evicts below 5%% free by default), or set the thresholds with --kubelet-arg=eviction-hard=nodefs.available<2Gi,imagefs.available<2Gi,memory.available<100Mi", kubeletDir, free)
	case corev1.NodeMemoryPressure:
		return "free memory on the node, or set the threshold with --kubelet-arg=eviction-hard=memory.available<… (default 100Mi)"
	default:
		return "the node runs short of process IDs: raise kernel.pid_max, or limit pods with --kubelet-arg=pod-max-pids=…"
	}
}

// reportPressure logs when the node comes under disk, memory or PID
// pressure, with what to do, and when the pressure ends.
func reportPressure(ctx context.Context, logger klog.Logger, client kubernetes.Interface, nodeName, kubeletDir string) {
	underPressure := map[corev1.NodeConditionType]bool{}
	_ = wait.PollUntilContextCancel(ctx, pressureCheckInterval, true, func(ctx context.Context) (bool, error) {
		node, err := client.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
		if err != nil {
			return false, nil // the API server is away; the next read tells
		}
		for _, c := range pressureChanges(underPressure, node.Status.Conditions) {
			if c.began {
				logger.Info("Node is under "+string(c.condition)+": the kubelet rejects new pods and evicts running ones",
					"node", nodeName, "kubelet", c.message, "fix", pressureFix(c.condition, kubeletDir))
			} else {
				logger.Info(string(c.condition)+" has ended", "node", nodeName)
			}
		}
		return false, nil
	})
}
