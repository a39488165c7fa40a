package component

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"syscall"

	"k8s.io/klog/v2"
)

// Child supervises one child process: its output goes to our log line by
// line with the component's key, its death is reported on Err, and Stop
// sends SIGTERM and waits. Embed it in a component.
type Child struct {
	errCh   chan error
	exited  chan struct{}
	process *os.Process
}

// StartChild starts cmd. The child gets SIGKILL if regente dies without
// stopping it, so a killed regente never leaves a stale daemon holding its
// socket and database; what must outlive regente (containerd's shims) is
// re-parented by the daemon itself.
func (c *Child) StartChild(ctx context.Context, name string, cmd *exec.Cmd) error {
	logger := klog.FromContext(ctx).WithValues("component", name)
	c.errCh = make(chan error, 1)
	c.exited = make(chan struct{})
	started := make(chan error, 1)
	// Pdeathsig fires when the thread that forked the child exits, not the
	// process: the goroutine keeps its thread locked until the child ends.
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		// Its own process group keeps a terminal's Ctrl-C (sent to the
		// whole foreground group) from stopping the child out of order:
		// regente stops it after the components that depend on it.
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
		stdout, err := cmd.StdoutPipe()
		if err == nil {
			cmd.Stderr = cmd.Stdout
		}
		if err == nil {
			err = cmd.Start()
		}
		started <- err
		if err != nil {
			return
		}
		c.process = cmd.Process
		logLines(logger, stdout)
		err = cmd.Wait()
		close(c.exited)
		if err == nil {
			err = errors.New("exited")
		}
		c.errCh <- fmt.Errorf("process %d: %w", cmd.Process.Pid, err)
	}()
	if err := <-started; err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	return nil
}

func logLines(logger klog.Logger, r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		logger.Info(sc.Text())
	}
}

// Err implements Failer.
func (c *Child) Err() <-chan error { return c.errCh }

// Stop sends SIGTERM and waits for the child to exit within ctx, then
// kills it.
func (c *Child) Stop(ctx context.Context) error {
	if c.process == nil {
		return nil
	}
	_ = c.process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
		return nil
	case <-ctx.Done():
		_ = c.process.Kill()
		return fmt.Errorf("child %d did not stop in time, killed: %w", c.process.Pid, ctx.Err())
	}
}
