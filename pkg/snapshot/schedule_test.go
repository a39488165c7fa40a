package snapshot

import (
	"context"
	"errors"
	"testing"
)

// recordingOffsite records what a Schedule asks of its off-machine store.
type recordingOffsite struct{ calls []string }

func (r *recordingOffsite) Upload(_ context.Context, dir, name string) error {
	r.calls = append(r.calls, "upload "+dir+" "+name)
	return nil
}

func (r *recordingOffsite) Prune(_ context.Context, prefix string, keep int) ([]string, error) {
	r.calls = append(r.calls, "prune "+prefix+" "+string(rune('0'+keep)))
	return nil, nil
}

func (r *recordingOffsite) Where() string { return "s3://b" }

// Each scheduled snapshot is uploaded and the store pruned with the same
// retention; a store that cannot be opened leaves the schedule going.
func TestScheduleUploads(t *testing.T) {
	store := &recordingOffsite{}
	s := &Schedule{Dir: "/snaps", Retention: 3, Offsite: func(context.Context) (Offsite, error) { return store, nil }}
	s.upload(context.Background(), "etcd-snapshot-n-1")
	if got := store.calls; len(got) != 2 || got[0] != "upload /snaps etcd-snapshot-n-1" || got[1] != "prune "+ScheduledPrefix+" 3" {
		t.Errorf("calls = %q", got)
	}
	s.Offsite = func(context.Context) (Offsite, error) { return nil, errors.New("unreachable") }
	s.upload(context.Background(), "etcd-snapshot-n-2")
}
