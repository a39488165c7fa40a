package component

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"k8s.io/klog/v2"
)

// DefaultStopTimeout bounds the whole reverse-order shutdown.
const DefaultStopTimeout = 15 * time.Second

// Manager runs one ordered list of components.
type Manager struct {
	components  []Component
	stopTimeout time.Duration
}

// NewManager returns a manager for components, started in the given order.
func NewManager(components ...Component) *Manager {
	return &Manager{components: components, stopTimeout: DefaultStopTimeout}
}

// Run inits every component in parallel, starts them in order (each gated on
// the previous one's Ready), then waits until ctx ends or a component fails,
// and stops the started ones in reverse order. It returns nil after a
// requested stop (ctx cancelled) and the failing component's error otherwise.
func (m *Manager) Run(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	if err := m.initAll(runCtx); err != nil {
		return err
	}

	var started []Component
	defer func() { m.stopAll(logger, started) }()
	// failure picks the error to return and logs it before anything stops:
	// upstream components may end the process while they are stopped
	// (klog.Fatal when their apiserver goes away), and the cause must be on
	// screen by then.
	failure := func(err error) error {
		if err = m.failure(ctx, runCtx, err); err != nil {
			logger.Error(err, "A component failed; stopping")
		}
		return err
	}
	for _, c := range m.components {
		logger.V(1).Info("Starting component", "component", c.Name())
		if err := c.Start(runCtx); err != nil {
			return failure(fmt.Errorf("start %s: %w", c.Name(), err))
		}
		started = append(started, c)
		if f, ok := c.(Failer); ok {
			go watchFailure(runCtx, cancel, c.Name(), f)
		}
		if r, ok := c.(Ready); ok {
			if err := r.Ready(runCtx); err != nil {
				return failure(fmt.Errorf("wait for %s to be ready: %w", c.Name(), err))
			}
		}
		logger.V(1).Info("Component started", "component", c.Name())
	}

	<-runCtx.Done()
	return failure(nil)
}

// failure picks the error Run returns: a component's failure wins over the
// error that merely reports the cancellation it caused; a requested stop is
// not an error.
func (m *Manager) failure(parent, runCtx context.Context, err error) error {
	if parent.Err() != nil {
		return nil
	}
	if cause := context.Cause(runCtx); cause != nil {
		return cause
	}
	return err
}

func (m *Manager) initAll(ctx context.Context) error {
	errs := make([]error, len(m.components))
	var wg sync.WaitGroup
	for i, c := range m.components {
		wg.Go(func() {
			if err := Init(ctx, c); err != nil {
				errs[i] = fmt.Errorf("init %s: %w", c.Name(), err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (m *Manager) stopAll(logger klog.Logger, started []Component) {
	ctx, cancel := context.WithTimeout(context.Background(), m.stopTimeout)
	defer cancel()
	for i := len(started) - 1; i >= 0; i-- {
		c := started[i]
		logger.V(1).Info("Stopping component", "component", c.Name())
		if err := c.Stop(ctx); err != nil {
			logger.Error(err, "Component did not stop cleanly", "component", c.Name())
		}
	}
}

func watchFailure(ctx context.Context, cancel context.CancelCauseFunc, name string, f Failer) {
	select {
	case <-ctx.Done():
	case err := <-f.Err():
		if err == nil {
			err = errors.New("exited unexpectedly")
		}
		cancel(fmt.Errorf("%s: %w", name, err))
	}
}
