package component

import (
	"context"

	"k8s.io/klog/v2"
)

// Component is one long-running part of a regente process.
type Component interface {
	// Name is the short name used in logs and errors ("apiserver").
	Name() string
	// Start launches the component and returns once it runs. ctx lives as
	// long as the process; long-running work belongs in goroutines.
	Start(ctx context.Context) error
	// Stop ends the component and waits for it within ctx's deadline.
	Stop(ctx context.Context) error
}

// Initer is implemented by components with work that can fail before
// anything runs: files, options, validation. The manager runs every
// Init, in parallel, before the first Start; Init must not start
// goroutines that outlive it.
type Initer interface {
	Init(ctx context.Context) error
}

// Init runs c's Init, if it has one.
func Init(ctx context.Context, c Component) error {
	if i, ok := c.(Initer); ok {
		return i.Init(ctx)
	}
	return nil
}

// Ready is implemented by components that later ones must wait for.
type Ready interface {
	// Ready blocks until the component serves, or returns ctx's error.
	Ready(ctx context.Context) error
}

// Failer is implemented by components that can die after Start. A value on
// the channel ends the whole process with that error as the cause.
type Failer interface {
	Err() <-chan error
}

// Func adapts a one-shot step that runs when its turn in the wiring list
// comes (for example, announcing that the API is ready) to a Component.
func Func(name string, start func(ctx context.Context) error) Component {
	return funcComponent{name: name, start: start}
}

type funcComponent struct {
	name  string
	start func(ctx context.Context) error
}

func (f funcComponent) Name() string                    { return f.name }
func (f funcComponent) Start(ctx context.Context) error { return f.start(ctx) }
func (f funcComponent) Stop(context.Context) error      { return nil }

// Unless is c, or, when off is set, a step in its place that says c is
// off and why: a component the user turned off keeps its place in the
// wiring list, and the log shows it.
func Unless(off bool, c Component, why string) Component {
	if !off {
		return c
	}
	return Func(c.Name()+"-disabled", func(ctx context.Context) error {
		klog.FromContext(ctx).Info(c.Name()+" is disabled", "component", c.Name(), "reason", why)
		return nil
	})
}
