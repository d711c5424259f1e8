package faultsuite

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"
)

// proc is one child process of a run (a nats-server, serve, a worker):
// started in its own process group, its output appended to a log file, and
// restartable with the same command after it was killed.
type proc struct {
	// Name names it in logs and errors, e.g. "worker-2" or "nats-1".
	Name string

	bin  string
	args []string
	env  []string
	dir  string
	log  string // log file path

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when the current run has been waited for
	err    error         // Wait's result, once exited is closed
}

// newProcess describes a process; Start runs it.
func newProcess(name, bin string, args, env []string, dir string) *proc {
	return &proc{Name: name, bin: bin, args: args, env: env, dir: dir, log: filepath.Join(dir, name+".log")}
}

// Start starts the process (again, after it exited), in its own process
// group so that Kill takes any children with it.
func (p *proc) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		select {
		case <-p.exited:
		default:
			return fmt.Errorf("faultsuite: start %s: already running", p.Name)
		}
	}
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("faultsuite: start %s: %w", p.Name, err)
	}
	fmt.Fprintf(f, "--- faultsuite: starting %s at %s\n", p.Name, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = p.env
	cmd.Dir = p.dir
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("faultsuite: start %s: %w", p.Name, err)
	}
	exited := make(chan struct{})
	p.cmd, p.exited = cmd, exited
	go func() {
		err := cmd.Wait()
		f.Close()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(exited)
	}()
	return nil
}

// Exited is closed when the current run of the process has ended.
func (p *proc) Exited() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.exited == nil {
		c := make(chan struct{})
		close(c)
		return c
	}
	return p.exited
}

// Running reports whether the process runs now.
func (p *proc) Running() bool {
	select {
	case <-p.Exited():
		return false
	default:
		return true
	}
}

// Err is how the last run ended (nil while it runs or after a clean exit).
func (p *proc) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// Kill sends SIGKILL to the process's group and waits until the process
// has been reaped. Killing a process that is not running does nothing.
func (p *proc) Kill() error {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	if cmd == nil {
		return nil
	}
	select {
	case <-exited:
		return nil
	default:
	}
	if err := killGroup(cmd.Process); err != nil {
		return fmt.Errorf("faultsuite: kill %s: %w", p.Name, err)
	}
	<-exited
	return nil
}

// LogTail is the last n bytes of the process's log, for error messages.
func (p *proc) LogTail(n int) string {
	data, err := os.ReadFile(p.log)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	if len(data) > n {
		data = data[len(data)-n:]
	}
	return string(data)
}

// LogPath is the process's log file.
func (p *proc) LogPath() string { return p.log }
