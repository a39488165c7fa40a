package server

import (
	"context"
	"fmt"
	"net"

	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/klog/v2"

	"regente.io/regente/pkg/apiserver"
	"regente.io/regente/pkg/atomicfile"
	"regente.io/regente/pkg/certs"
	"regente.io/regente/pkg/component"
	"regente.io/regente/pkg/config"
	"regente.io/regente/pkg/datadir"
	"regente.io/regente/pkg/datastore"
	"regente.io/regente/pkg/datastore/backend"
	"regente.io/regente/pkg/etcd"
	"regente.io/regente/pkg/join"
	"regente.io/regente/pkg/secretsencrypt"
	"regente.io/regente/pkg/snapshot"
	"regente.io/regente/pkg/sqlitelimit"
)

// datastoreWiring is what the server's wiring list needs from the
// datastore it runs: kine (SQLite or an external database) or an embedded
// etcd member.
type datastoreWiring struct {
	components    []component.Component
	servers       string // the apiserver's --etcd-servers
	tls           *apiserver.EtcdTLS
	etcdMembers   func(context.Context) ([]string, error) // for joining servers; nil without etcd
	onNodeDeleted []join.NodeDeleted
}

func newDatastore(cfg *config.Server, dirs datadir.Layout, nodeName string, nodeIP net.IP, etcdArgs map[string]any) datastoreWiring {
	paths := dirs.Server
	if cfg.Datastore.Kine() {
		kine := datastore.New(datastore.Config{
			Backend:      cfg.Datastore,
			SQLiteFile:   paths.SQLiteFile,
			Socket:       paths.KineSocket,
			TLS:          datastore.TLS{CAFile: cfg.DatastoreCAFile, CertFile: cfg.DatastoreCertFile, KeyFile: cfg.DatastoreKeyFile},
			MemoryDir:    dirs.Run.DatastoreDir,
			InMemory:     cfg.DatastoreInMemory,
			SaveInterval: cfg.DatastoreSaveInterval,
		})
		components := []component.Component{kine}
		if !cfg.Datastore.Shared() {
			// SQLite, regente's own file or the user's: say when the
			// cluster has outgrown it.
			components = append(components, sqlitelimit.New(sqlitelimit.Config{Gatherer: legacyregistry.DefaultGatherer}))
		}
		return datastoreWiring{components: components, servers: kine.EtcdServers()}
	}
	member := etcd.New(etcd.Config{
		Dir:         paths.EtcdDir,
		TLSDir:      paths.TLSDir,
		NodeName:    nodeName,
		IP:          nodeIP,
		ClusterInit: cfg.Datastore.Etcd == backend.EtcdInit,
		Members:     joinedMembers(cfg, paths),
		Args:        etcdArgs,
	})
	pki := certs.Layout(paths.TLSDir)
	w := datastoreWiring{
		components:    []component.Component{member},
		servers:       etcd.LocalEndpoint,
		tls:           &apiserver.EtcdTLS{CAFile: pki.EtcdCA.Cert, CertFile: pki.EtcdClient.Cert, KeyFile: pki.EtcdClient.Key},
		etcdMembers:   member.ClientURLs,
		onNodeDeleted: []join.NodeDeleted{member.RemoveNode},
	}
	if cfg.Datastore.Etcd == backend.EtcdInit {
		w.components = append(w.components, component.Func("migrate-sqlite", func(ctx context.Context) error {
			return member.MigrateSQLite(ctx, paths.SQLiteFile)
		}))
	}
	return w
}

// restoreKeys writes the CAs and keys a snapshot carries into a data dir
// that has none (a fresh machine), opened with --token, else with the
// token the data dir already has, and keeps that token for the next start.
func restoreKeys(ctx context.Context, cfg *config.Server, paths datadir.ServerPaths) error {
	var secret string
	given, err := join.ReadToken(cfg.Token, cfg.TokenFile)
	if err != nil {
		return err
	}
	if given == "" {
		given, _ = join.ReadToken("", paths.TokenFile)
	}
	if given != "" {
		t, err := join.ParseToken(given)
		if err != nil {
			return fmt.Errorf("--token: %w", err)
		}
		secret = t.Secret
	}
	restored, err := snapshot.RestoreBootstrap(cfg.ClusterResetRestorePath, paths.TLSDir, secretsencrypt.Path(paths.CredDir), secret)
	if err != nil || !restored {
		return err
	}
	hashes, err := certs.TrustedCAHashes(paths.TLSDir)
	if err != nil {
		return err
	}
	token := join.Token{CAHash: hashes[0], Kind: join.KindServer, Secret: secret}.String()
	if err := atomicfile.Write(atomicfile.File{Path: paths.TokenFile, Data: []byte(token + "\n"), Mode: 0o600}); err != nil {
		return fmt.Errorf("write the join token: %w", err)
	}
	klog.FromContext(ctx).Info("Restored the cluster's CAs and keys from the snapshot: certificates, service account tokens and the join token stay valid",
		"snapshot", cfg.ClusterResetRestorePath, "tls", paths.TLSDir)
	return nil
}

// joinedMembers asks --server for its etcd members; nil unless joining.
func joinedMembers(cfg *config.Server, paths datadir.ServerPaths) func(context.Context) ([]string, error) {
	if cfg.Datastore.Etcd != backend.EtcdJoin {
		return nil
	}
	return func(ctx context.Context) ([]string, error) {
		token, err := join.LoadToken(cfg.Token, cfg.TokenFile)
		if err != nil {
			return nil, err
		}
		return join.FetchEtcdMembers(ctx, cfg.Server, token, paths.TLSDir)
	}
}

// resetEtcd restores an etcd snapshot, or without one restarts the member
// with force-new-cluster, which keeps its data but forgets every other
// member; either way this server is then a cluster of one.
func resetEtcd(ctx context.Context, cfg *config.Server, paths datadir.ServerPaths, nodeName string, nodeIP net.IP, etcdArgs map[string]any) error {
	logger := klog.FromContext(ctx)
	if cfg.ClusterResetRestorePath != "" {
		name := etcd.NewMemberName(nodeName)
		aside, err := snapshot.RestoreEtcd(cfg.ClusterResetRestorePath, paths.EtcdDir, name, etcd.PeerURL(nodeIP))
		if err != nil {
			return err
		}
		if err := etcd.SaveMemberName(paths.EtcdDir, name); err != nil {
			return err
		}
		if aside != "" {
			logger.Info("The etcd data it replaced is kept", "dir", aside)
		}
		logger.Info("Restored etcd from the snapshot as a cluster of one; start regente again without --cluster-reset, then join the other servers afresh",
			"snapshot", cfg.ClusterResetRestorePath, "member", name)
		return nil
	}
	if !etcd.HasData(paths.EtcdDir) {
		return fmt.Errorf("--cluster-reset: %s holds no etcd member to reset; give --cluster-reset-restore-path <snapshot> to restore one", paths.EtcdDir)
	}
	member := etcd.New(etcd.Config{Dir: paths.EtcdDir, TLSDir: paths.TLSDir, NodeName: nodeName, IP: nodeIP, ForceNewCluster: true, Args: etcdArgs})
	if err := member.Start(ctx); err != nil {
		return fmt.Errorf("reset the etcd membership: %w", err)
	}
	if err := member.Stop(ctx); err != nil {
		return err
	}
	logger.Info("The etcd membership is reset to this server alone, with its data; start regente again without --cluster-reset, then join the other servers afresh")
	return nil
}
