package component

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// Runner runs one blocking function, typically an upstream component's
// Run, and supplies the Err and Stop halves of the lifecycle. Embed it in
// a component to get both.
type Runner struct {
	once    sync.Once
	errCh   chan error
	stopped chan struct{}
	cancel  context.CancelFunc
}

func (r *Runner) init() {
	r.once.Do(func() {
		r.errCh = make(chan error, 1)
		r.stopped = make(chan struct{})
	})
}

// Start calls prepare with a context that keeps ctx's values but ends only
// with Stop, then runs the function prepare returns in a goroutine. An
// error from prepare is returned as is; the run function returning while
// its context is live is reported on Err.
func (r *Runner) Start(ctx context.Context, prepare func(ctx context.Context) (run func() error, err error)) error {
	r.init()
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	run, err := prepare(runCtx)
	if err != nil {
		cancel()
		return err
	}
	r.cancel = cancel
	go func() {
		defer close(r.stopped)
		err := run()
		if runCtx.Err() == nil {
			if err == nil {
				err = errors.New("exited")
			}
			r.errCh <- err
		}
	}()
	return nil
}

// Err implements Failer.
func (r *Runner) Err() <-chan error {
	r.init()
	return r.errCh
}

// Stop cancels the run and waits for it to return within ctx.
func (r *Runner) Stop(ctx context.Context) error {
	if r.cancel == nil {
		return nil
	}
	r.cancel()
	select {
	case <-r.stopped:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait to stop: %w", ctx.Err())
	}
}

// Cancel ends the run's context without waiting for it to return, for
// upstream code that does not return when its context ends; the process
// exit ends it.
func (r *Runner) Cancel() {
	if r.cancel != nil {
		r.cancel()
	}
}

// Background is a component that runs watch in a goroutine from its turn
// in the wiring list until Stop, which cancels watch's context and waits
// for it: work that follows the cluster (announcing a node, reporting its
// pressure) without holding up the components after it, and without a
// goroutine that outlives the manager.
func Background(name string, watch func(ctx context.Context)) Component {
	return &background{name: name, watch: watch}
}

type background struct {
	Runner
	name  string
	watch func(ctx context.Context)
}

func (b *background) Name() string { return b.name }

func (b *background) Start(ctx context.Context) error {
	return b.Runner.Start(ctx, func(ctx context.Context) (func() error, error) {
		return func() error {
			b.watch(ctx)
			<-ctx.Done() // done early is not a failure: the work is over
			return nil
		}, nil
	})
}
