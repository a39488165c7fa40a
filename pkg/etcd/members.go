package etcd

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"k8s.io/klog/v2"
)

// ClientURLs lists the client URLs of the cluster's started members, for
// servers that join through this one.
func (e *Etcd) ClientURLs(ctx context.Context) ([]string, error) {
	cli, err := NewClient(e.cfg.TLSDir, LocalEndpoint)
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	list, err := cli.MemberList(lctx)
	if err != nil {
		return nil, fmt.Errorf("list etcd members: %w", err)
	}
	var urls []string
	for _, m := range list.Members {
		if !m.IsLearner {
			urls = append(urls, m.ClientURLs...)
		}
	}
	return urls, nil
}

// RemoveNode removes the members of a deleted node from the cluster, as
// k3s does on `kubectl delete node`: the server's member would otherwise
// count towards the quorum forever. Every server runs it; the first
// removal wins and the others find nothing to remove. etcd refuses a
// removal while another member has only just (re)connected, since the
// cluster might then lose its quorum; that refusal is retried.
func (e *Etcd) RemoveNode(ctx context.Context, nodeName string) error {
	deadline := time.Now().Add(3 * time.Minute)
	for {
		err := e.removeNode(ctx, nodeName)
		if err == nil || !errors.Is(err, rpctypes.ErrUnhealthy) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(5 * time.Second):
		}
	}
}

func (e *Etcd) removeNode(ctx context.Context, nodeName string) error {
	cli, err := NewClient(e.cfg.TLSDir, LocalEndpoint)
	if err != nil {
		return err
	}
	defer cli.Close()
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	list, err := cli.MemberList(rctx)
	if err != nil {
		return fmt.Errorf("list etcd members: %w", err)
	}
	for _, m := range list.Members {
		if NodeOfMember(m.Name) != nodeName {
			continue
		}
		if _, err := cli.MemberRemove(rctx, m.ID); err != nil && !errors.Is(err, rpctypes.ErrMemberNotFound) {
			return fmt.Errorf("remove etcd member %s of deleted node %s: %w", m.Name, nodeName, err)
		}
		klog.FromContext(ctx).Info("Removed the etcd member of a deleted node", "component", "etcd", "node", nodeName, "member", m.Name)
	}
	return nil
}
