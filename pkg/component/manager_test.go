package component

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// fake records lifecycle calls into a shared journal.
type fake struct {
	name     string
	journal  *journal
	startErr error
	errCh    chan error
	ready    chan struct{}
}

type journal struct {
	mu    sync.Mutex
	calls []string
}

func (j *journal) add(s string) { j.mu.Lock(); j.calls = append(j.calls, s); j.mu.Unlock() }
func (j *journal) list() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]string(nil), j.calls...)
}

func (f *fake) Name() string                { return f.name }
func (f *fake) Init(context.Context) error  { return nil }
func (f *fake) Start(context.Context) error { f.journal.add("start " + f.name); return f.startErr }
func (f *fake) Stop(context.Context) error  { f.journal.add("stop " + f.name); return nil }
func (f *fake) Err() <-chan error           { return f.errCh }
func (f *fake) Ready(ctx context.Context) error {
	select {
	case <-f.ready:
		f.journal.add("ready " + f.name)
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func newFake(name string, j *journal) *fake {
	ready := make(chan struct{})
	close(ready)
	return &fake{name: name, journal: j, errCh: make(chan error, 1), ready: ready}
}

func TestManagerOrderAndRequestedStop(t *testing.T) {
	j := &journal{}
	a, b := newFake("a", j), newFake("b", j)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- NewManager(a, b).Run(ctx) }()
	waitFor(t, func() bool { return len(j.list()) == 4 })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("requested stop returned %v, want nil", err)
	}
	want := []string{"start a", "ready a", "start b", "ready b", "stop b", "stop a"}
	if got := j.list(); !reflect.DeepEqual(got, want) {
		t.Fatalf("calls = %v, want %v", got, want)
	}
}

func TestManagerComponentFailureEndsRun(t *testing.T) {
	j := &journal{}
	a, b := newFake("a", j), newFake("b", j)
	a.errCh <- errors.New("boom")
	err := NewManager(a, b).Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "a: boom") {
		t.Fatalf("Run = %v, want the failure of a", err)
	}
	calls := j.list()
	if calls[len(calls)-1] != "stop a" {
		t.Fatalf("a must be stopped last, calls = %v", calls)
	}
}

func TestManagerStartErrorStopsStarted(t *testing.T) {
	j := &journal{}
	a, b, c := newFake("a", j), newFake("b", j), newFake("c", j)
	b.startErr = errors.New("port in use")
	err := NewManager(a, b, c).Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "start b: port in use") {
		t.Fatalf("Run = %v", err)
	}
	want := []string{"start a", "ready a", "start b", "stop a"}
	if got := j.list(); !reflect.DeepEqual(got, want) {
		t.Fatalf("calls = %v, want %v", got, want)
	}
}

func TestMergeArgs(t *testing.T) {
	got := MergeArgs(
		[]string{"--a=1", "--b=2", "--flag"},
		[]string{"--b=3", "--flag=false", "--c=x,y", "--c=z"},
	)
	want := []string{"--a=1", "--b=3", "--flag=false", "--c=x,y", "--c=z"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("MergeArgs = %v, want %v", got, want)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRunnerReportsEarlyExitAndStops(t *testing.T) {
	var r Runner
	err := r.Start(context.Background(), func(ctx context.Context) (func() error, error) {
		return func() error { return errors.New("bind: address in use") }, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := <-r.Err(); got == nil || got.Error() != "bind: address in use" {
		t.Fatalf("Err() = %v", got)
	}

	var r2 Runner
	r2.Start(context.Background(), func(ctx context.Context) (func() error, error) {
		return func() error { <-ctx.Done(); return nil }, nil
	})
	if err := r2.Stop(context.Background()); err != nil {
		t.Fatalf("Stop = %v", err)
	}
	select {
	case err := <-r2.Err():
		t.Fatalf("a requested stop must not be reported as a failure: %v", err)
	default:
	}
}

// Background work that ends early is no failure; Stop waits for work
// still running to return.
func TestBackground(t *testing.T) {
	ctx := context.Background()
	early := Background("early", func(context.Context) {})
	if err := early.Start(ctx); err != nil {
		t.Fatal(err)
	}
	returned := make(chan struct{})
	long := Background("long", func(ctx context.Context) { <-ctx.Done(); close(returned) })
	if err := long.Start(ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range []Component{early, long} {
		if err := c.Stop(ctx); err != nil {
			t.Fatalf("stop %s: %v", c.Name(), err)
		}
		select {
		case err := <-c.(Failer).Err():
			t.Errorf("%s reported %v", c.Name(), err)
		default:
		}
	}
	select {
	case <-returned:
	default:
		t.Error("Stop returned before the background work did")
	}
}
