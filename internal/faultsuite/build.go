package faultsuite

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"golang.org/x/sync/errgroup"
)

// Binaries are the executables a run starts.
type Binaries struct {
	// Orgdispatch is the orgdispatch command (serve, worker).
	Orgdispatch string
	// NATSServer is nats-server, of the version go.mod requires.
	NATSServer string
}

// natsServerPkg is nats-server's main package, built at the version go.mod
// requires (the one the embedded server uses).
const natsServerPkg = "github.com/nats-io/nats-server/v2"

// Build builds into dir what b leaves empty: orgdispatch from this module's
// ./cmd/orgdispatch and nats-server from the nats-server module go.mod
// requires, concurrently, with the go command found on PATH and the module
// found from the working directory (go env GOMOD). It fails, saying why,
// when either is missing: the suite never runs against something else.
func Build(ctx context.Context, dir string, b Binaries) (Binaries, error) {
	if b.Orgdispatch != "" && b.NATSServer != "" {
		return b, nil
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return b, fmt.Errorf("faultsuite: the go command is needed to build orgdispatch and nats-server: %w", err)
	}
	root, err := moduleRoot(ctx, goBin)
	if err != nil {
		return b, err
	}
	var g errgroup.Group
	build := func(out *string, name, pkg string) {
		if *out != "" {
			return
		}
		path := filepath.Join(dir, name)
		g.Go(func() error {
			cmd := exec.CommandContext(ctx, goBin, "build", "-trimpath", "-o", path, pkg)
			cmd.Dir = root
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			if out, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("faultsuite: go build %s: %v\n%s", pkg, err, out)
			}
			return nil
		})
		*out = path
	}
	build(&b.Orgdispatch, "orgdispatch", "./cmd/orgdispatch")
	build(&b.NATSServer, "nats-server", natsServerPkg)
	if err := g.Wait(); err != nil {
		return Binaries{}, err
	}
	return b, nil
}

// moduleRoot is the directory of orgdispatch's go.mod, as seen from the
// working directory.
func moduleRoot(ctx context.Context, goBin string) (string, error) {
	out, err := exec.CommandContext(ctx, goBin, "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("faultsuite: go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("faultsuite: run inside the orgdispatch module (go env GOMOD is %q): the suite builds nats-server from its go.mod", gomod)
	}
	data, err := os.ReadFile(gomod)
	if err != nil {
		return "", fmt.Errorf("faultsuite: %w", err)
	}
	if !bytes.Contains(data, []byte("module github.com/orgdispatch/orgdispatch")) {
		return "", fmt.Errorf("faultsuite: %s is not orgdispatch's go.mod", gomod)
	}
	return filepath.Dir(gomod), nil
}
