package etcd

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.etcd.io/etcd/server/v3/etcdserver/api/snap"
	"go.etcd.io/etcd/server/v3/storage/wal"
	"k8s.io/klog/v2"

	"regente.io/regente/pkg/atomicfile"
	"regente.io/regente/pkg/component"
)

// Config is what the member needs.
type Config struct {
	// Dir is the member's data dir, <data-dir>/server/db/etcd.
	Dir string
	// TLSDir holds the etcd CA and this server's etcd certificates.
	TLSDir   string
	NodeName string
	// IP is the node address peers and other servers reach the member on.
	IP net.IP
	// ClusterInit starts a new cluster when Dir holds no member.
	ClusterInit bool
	// Members returns the client URLs of the cluster to join through
	// --server; nil when this server joins no one.
	Members func(ctx context.Context) ([]string, error)
	// ForceNewCluster resets the membership to this member alone
	// (--cluster-reset).
	ForceNewCluster bool
	// Args are the parsed --etcd-arg values.
	Args map[string]any
}

// Etcd is the embedded etcd member, a component.
type Etcd struct {
	cfg    Config
	server *embed.Etcd
	errCh  chan error
	id     uint64
	// stopping tells watch that Stop, not a failure, ends the member.
	stopping atomic.Bool
}

var (
	_ component.Component = (*Etcd)(nil)
	_ component.Failer    = (*Etcd)(nil)
)

// New returns the etcd component.
func New(cfg Config) *Etcd { return &Etcd{cfg: cfg, errCh: make(chan error, 1)} }

// Name implements component.Component.
func (e *Etcd) Name() string { return "etcd" }

// Err implements component.Failer: the member stopped on its own, for
// example because it was removed from the cluster.
func (e *Etcd) Err() <-chan error { return e.errCh }

// Start prepares the membership (new cluster, join, or restart), starts the
// member and returns once it serves.
func (e *Etcd) Start(ctx context.Context) error {
	logger := klog.FromContext(ctx).WithValues("component", "etcd")
	if err := os.MkdirAll(filepath.Dir(e.cfg.Dir), 0o700); err != nil {
		return fmt.Errorf("create datastore directory: %w", err)
	}
	if hasData(e.cfg.Dir) && e.cfg.Members != nil && !e.cfg.ForceNewCluster {
		if err := e.setAsideIfRemoved(ctx, logger); err != nil {
			return err
		}
	}
	name, err := e.memberName()
	if err != nil {
		return err
	}
	m := memberConfig{name: name, ip: e.cfg.IP, state: "new", initialCluster: name + "=" + peerURL(e.cfg.IP), forceNew: e.cfg.ForceNewCluster}
	var promote func(context.Context) error
	switch {
	case hasData(e.cfg.Dir):
		logger.Info("Starting the etcd member from its data", "name", name, "dir", e.cfg.Dir)
	case e.cfg.ClusterInit || e.cfg.Members == nil:
		logger.Info("Starting a new etcd cluster", "name", name, "dir", e.cfg.Dir)
	default:
		initial, promoteFn, err := e.addLearner(ctx, logger, name)
		if err != nil {
			return err
		}
		m.initialCluster, m.state, promote = initial, "existing", promoteFn
	}
	cfg, err := e.writeConfig(m)
	if err != nil {
		return err
	}
	srv, err := embed.StartEtcd(cfg)
	if err != nil {
		if damagedData(err) {
			return fmt.Errorf("start etcd member %s: its data in %s is damaged (%w): it was left untouched; "+
				"restore a snapshot with `regente server --cluster-reset --cluster-reset-restore-path <snapshot>`, "+
				"or, on a cluster whose other members are healthy, move %s away and start this server again with --server and --token to re-join",
				name, e.cfg.Dir, err, e.cfg.Dir)
		}
		return fmt.Errorf("start etcd member %s in %s: %w", name, e.cfg.Dir, err)
	}
	e.server = srv
	select {
	case <-srv.Server.ReadyNotify():
	case err := <-srv.Err():
		srv.Close()
		return fmt.Errorf("start etcd member %s: %w", name, err)
	case <-srv.Server.StopNotify():
		srv.Close()
		return fmt.Errorf("etcd member %s stopped while starting: if it was removed from the cluster, start regente again with --server to re-join", name)
	case <-ctx.Done():
		srv.Close()
		return fmt.Errorf("wait for etcd member %s: %w", name, ctx.Err())
	}
	e.id = uint64(srv.Server.MemberID())
	logger.Info("etcd member ready", "name", name, "id", fmt.Sprintf("%x", e.id), "client", LocalEndpoint)
	go e.watch(name)
	if promote != nil {
		go e.promoteWhenCaughtUp(context.WithoutCancel(ctx), logger, promote)
	}
	return nil
}

// watch reports the member stopping while the server still runs it.
func (e *Etcd) watch(name string) {
	srv := e.server
	err := errors.New("it left the cluster or lost its storage")
	select {
	case err = <-srv.Err():
	case <-srv.Server.StopNotify():
	}
	if e.stopping.Load() {
		return
	}
	e.errCh <- fmt.Errorf("etcd member %s stopped (%v); if this server's node was deleted it left the cluster: start regente again with --server <another server> to re-join (its old data is kept aside)", name, err)
}

// Stop closes the member.
func (e *Etcd) Stop(context.Context) error {
	e.stopping.Store(true)
	if e.server != nil {
		e.server.Close()
	}
	return nil
}

// memberName is "<node>-<8 hex>", kept in a file beside the data dir so a
// restart reuses it and a re-join after being set aside gets a new one.
func (e *Etcd) memberName() (string, error) {
	file := e.nameFile()
	if b, err := os.ReadFile(file); err == nil && hasData(e.cfg.Dir) {
		return strings.TrimSpace(string(b)), nil
	}
	name := NewMemberName(e.cfg.NodeName)
	return name, SaveMemberName(e.cfg.Dir, name)
}

func (e *Etcd) nameFile() string { return nameFile(e.cfg.Dir) }

func nameFile(dataDir string) string { return filepath.Join(filepath.Dir(dataDir), "etcd-name") }

// SaveMemberName records the name of the member in dataDir, for a data dir
// made by restoring a snapshot.
func SaveMemberName(dataDir, name string) error {
	if err := atomicfile.Write(atomicfile.File{Path: nameFile(dataDir), Data: []byte(name + "\n"), Mode: 0o600}); err != nil {
		return fmt.Errorf("save etcd member name: %w", err)
	}
	return nil
}

// NewMemberName is "<node>-<8 random hex>": unique across re-joins of the
// same node, and NodeOfMember finds the node in it.
func NewMemberName(node string) string {
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	return node + "-" + hex.EncodeToString(suffix)
}

// NodeOfMember returns the node a member name belongs to.
func NodeOfMember(member string) string {
	i := strings.LastIndex(member, "-")
	if i < 0 || len(member)-i-1 != 8 {
		return ""
	}
	return member[:i]
}

// addLearner adds this server to the cluster at the --server's members as
// a learner, which cannot cost the cluster its quorum while it catches up,
// and returns the initial-cluster value and the promotion to run later.
func (e *Etcd) addLearner(ctx context.Context, logger klog.Logger, name string) (string, func(context.Context) error, error) {
	urls, err := e.cfg.Members(ctx)
	if err != nil {
		return "", nil, err
	}
	cli, err := NewClient(e.cfg.TLSDir, urls...)
	if err != nil {
		return "", nil, err
	}
	defer cli.Close()
	mine := peerURL(e.cfg.IP)
	actx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	list, err := cli.MemberList(actx)
	if err != nil {
		return "", nil, fmt.Errorf("list the etcd members at %s: %w", strings.Join(urls, ","), err)
	}
	for _, m := range list.Members {
		for _, u := range m.PeerURLs {
			if u == mine {
				// A member left over from an earlier install of this
				// machine whose data dir is gone: it can never start again.
				logger.Info("Removing a stale etcd member with this server's address", "member", m.Name, "peer", u)
				if _, err := cli.MemberRemove(actx, m.ID); err != nil && !errors.Is(err, rpctypes.ErrMemberNotFound) {
					return "", nil, fmt.Errorf("remove stale etcd member %s: %w", m.Name, err)
				}
			}
		}
	}
	added, err := addAsLearner(ctx, logger, cli, mine)
	if err != nil {
		return "", nil, err
	}
	logger.Info("Joined the etcd cluster as a learner; it is promoted once it has caught up", "name", name, "members", len(added.Members))
	var initial []string
	for _, m := range added.Members {
		n := m.Name
		if m.ID == added.Member.ID {
			n = name
		}
		for _, u := range m.PeerURLs {
			initial = append(initial, n+"="+u)
		}
	}
	id := added.Member.ID
	promote := func(ctx context.Context) error {
		cli, err := NewClient(e.cfg.TLSDir, append([]string{LocalEndpoint}, urls...)...)
		if err != nil {
			return err
		}
		defer cli.Close()
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_, err = cli.MemberPromote(pctx, id)
		return err
	}
	return strings.Join(initial, ","), promote, nil
}

// addAsLearner adds the member at peer as a learner. etcd takes one
// learner at a time and refuses changes while a member has only just
// connected ("unhealthy cluster"): servers that join together wait their
// turn.
func addAsLearner(ctx context.Context, logger klog.Logger, cli *clientv3.Client, peer string) (*clientv3.MemberAddResponse, error) {
	for attempt := 0; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, 30*time.Second)
		added, err := cli.MemberAddAsLearner(actx, []string{peer})
		cancel()
		if err == nil {
			return added, nil
		}
		if !errors.Is(err, rpctypes.ErrUnhealthy) && !errors.Is(err, rpctypes.ErrTooManyLearners) || attempt == 60 {
			return nil, fmt.Errorf("add this server to the etcd cluster as %s: %w", peer, err)
		}
		if attempt%6 == 0 {
			logger.Info("The etcd cluster cannot take this member yet; retrying", "reason", err.Error())
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(5 * time.Second):
		}
	}
}

// promoteWhenCaughtUp retries the promotion until the leader accepts it:
// it refuses while the learner's log lags.
func (e *Etcd) promoteWhenCaughtUp(ctx context.Context, logger klog.Logger, promote func(context.Context) error) {
	for attempt := 0; ; attempt++ {
		err := promote(ctx)
		if err == nil || errors.Is(err, rpctypes.ErrMemberNotLearner) {
			logger.Info("This etcd member is now a voting member")
			return
		}
		if attempt%6 == 5 {
			logger.Info("etcd learner not promoted yet", "reason", err.Error())
		}
		select {
		case <-ctx.Done():
			return
		case <-e.server.Server.StopNotify():
			return
		case <-time.After(5 * time.Second):
		}
	}
}

// setAsideIfRemoved moves the data dir aside when the cluster at --server
// no longer lists this member (its node was deleted): the member could never
// start again, and a fresh join is what the user wants. An unreachable
// cluster changes nothing: the member starts from its data.
func (e *Etcd) setAsideIfRemoved(ctx context.Context, logger klog.Logger) error {
	b, err := os.ReadFile(e.nameFile())
	if err != nil {
		return nil
	}
	name := strings.TrimSpace(string(b))
	lctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	urls, err := e.cfg.Members(lctx)
	if err != nil {
		logger.Info("Cannot ask the cluster whether this member still belongs to it; starting from its data", "reason", err.Error())
		return nil
	}
	cli, err := NewClient(e.cfg.TLSDir, urls...)
	if err != nil {
		return nil
	}
	defer cli.Close()
	list, err := cli.MemberList(lctx)
	if err != nil {
		logger.Info("Cannot list the etcd members; starting from this member's data", "reason", err.Error())
		return nil
	}
	for _, m := range list.Members {
		if m.Name == name || (m.Name == "" && len(m.PeerURLs) > 0 && m.PeerURLs[0] == peerURL(e.cfg.IP)) {
			return nil
		}
	}
	aside := e.cfg.Dir + "-old-" + time.Now().UTC().Format("20060102T150405Z")
	if err := os.Rename(e.cfg.Dir, aside); err != nil {
		return fmt.Errorf("set aside the data of removed etcd member %s: %w", name, err)
	}
	logger.Info("This server's etcd member was removed from the cluster; its data is kept aside and the server joins again", "member", name, "kept", aside)
	return nil
}

// NewClient returns an etcd client that authenticates with this server's
// etcd client certificate.
func NewClient(tlsDir string, endpoints ...string) (*clientv3.Client, error) {
	cfg, err := ClientConfig(tlsDir, endpoints...)
	if err != nil {
		return nil, err
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to etcd at %s: %w", strings.Join(endpoints, ","), err)
	}
	return cli, nil
}

// damagedData reports whether etcd refused to start because its WAL or
// snapshot files are damaged (a failing disk, a write torn mid-record that
// etcd's own repair of the WAL's tail could not mend).
func damagedData(err error) bool {
	for _, damaged := range []error{wal.ErrCRCMismatch, wal.ErrSnapshotMismatch, wal.ErrSliceOutOfRange, wal.ErrDecoderNotFound, snap.ErrCRCMismatch, snap.ErrEmptySnapshot} {
		if errors.Is(err, damaged) {
			return true
		}
	}
	return false
}
