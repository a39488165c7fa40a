package snapshot

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/robfig/cron/v3"
	"k8s.io/klog/v2"

	"regente.io/regente/pkg/component"
)

// ScheduledPrefix starts the names of scheduled snapshots; only those are
// pruned.
const ScheduledPrefix = "etcd-snapshot-"

// Schedule takes scheduled snapshots of the datastore.
type Schedule struct {
	component.Runner
	// Save takes one snapshot named name into dir (SaveSQLite or SaveEtcd).
	Save      func(ctx context.Context, dir, name string) (*Info, error)
	Dir       string
	NodeName  string
	Cron      string
	Retention int
	// Offsite, when set, opens the off-machine copy (S3) each scheduled
	// snapshot is uploaded to and pruned in, with the same retention.
	Offsite func(ctx context.Context) (Offsite, error)
}

// Offsite is a store of snapshots off the machine.
type Offsite interface {
	Upload(ctx context.Context, dir, name string) error
	Prune(ctx context.Context, prefix string, keep int) ([]string, error)
	Where() string
}

var (
	_ component.Component = (*Schedule)(nil)
	_ component.Failer    = (*Schedule)(nil)
)

// Name implements component.Component.
func (s *Schedule) Name() string { return "snapshots" }

var _ component.Initer = (*Schedule)(nil)

// Init implements component.Component.
func (s *Schedule) Init(context.Context) error {
	_, err := cron.ParseStandard(s.Cron)
	return err
}

// Start takes snapshots on the schedule until Stop. A failed snapshot is
// logged and the next one still happens.
func (s *Schedule) Start(ctx context.Context) error {
	schedule, err := cron.ParseStandard(s.Cron)
	if err != nil {
		return fmt.Errorf("--etcd-snapshot-schedule-cron: %w", err)
	}
	logger := klog.FromContext(ctx).WithValues("component", s.Name())
	return s.Runner.Start(klog.NewContext(ctx, logger), func(ctx context.Context) (func() error, error) {
		return func() error {
			for {
				next := schedule.Next(time.Now())
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(time.Until(next)):
				}
				name := ScheduledPrefix + s.NodeName + "-" + strconv.FormatInt(time.Now().Unix(), 10)
				begin := time.Now()
				info, err := s.Save(ctx, s.Dir, name)
				if err != nil {
					logger.Error(err, "Scheduled snapshot failed; the next one runs on schedule")
					continue
				}
				logger.Info("Saved a scheduled snapshot", "name", name, "dir", s.Dir, "bytes", info.Size, "took", time.Since(begin).Round(time.Millisecond))
				if deleted, err := Prune(s.Dir, ScheduledPrefix, s.Retention); err != nil {
					logger.Error(err, "Cannot prune old snapshots")
				} else if len(deleted) > 0 {
					logger.Info("Pruned old snapshots", "deleted", deleted, "kept", s.Retention)
				}
				if s.Offsite != nil {
					s.upload(ctx, name)
				}
			}
		}, nil
	})
}

// upload copies the snapshot name off the machine and prunes there; a
// failure is logged, and the local copy stays.
func (s *Schedule) upload(ctx context.Context, name string) {
	logger := klog.FromContext(ctx)
	store, err := s.Offsite(ctx)
	if err != nil {
		logger.Error(err, "Cannot upload the scheduled snapshot; it is kept on disk", "name", name)
		return
	}
	begin := time.Now()
	if err := store.Upload(ctx, s.Dir, name); err != nil {
		logger.Error(err, "Cannot upload the scheduled snapshot; it is kept on disk", "name", name)
		return
	}
	logger.Info("Uploaded the scheduled snapshot", "name", name, "to", store.Where(), "took", time.Since(begin).Round(time.Millisecond))
	if deleted, err := store.Prune(ctx, ScheduledPrefix, s.Retention); err != nil {
		logger.Error(err, "Cannot prune old snapshots", "in", store.Where())
	} else if len(deleted) > 0 {
		logger.Info("Pruned old snapshots", "in", store.Where(), "deleted", deleted, "kept", s.Retention)
	}
}
