package natsserver

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// MinVersion is the oldest nats-server orgdispatch works with: 2.11 added the
// consumer pause API that per-tenant pauses rely on.
const MinVersion = "2.11.0"

const minMajor, minMinor = 2, 11

// CheckServerVersion checks that the server nc is connected to can run
// orgdispatch: version ≥ MinVersion and JetStream enabled for the account.
// The errors say what is wrong and what is needed.
func CheckServerVersion(nc *nats.Conn) error {
	url := nc.ConnectedUrlRedacted()
	if err := checkVersion(nc.ConnectedServerVersion(), url); err != nil {
		return err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("nats-server at %s: %w", url, err)
	}
	timeout := nc.Opts.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if _, err := js.AccountInfo(ctx); err != nil {
		switch {
		case errors.Is(err, jetstream.ErrJetStreamNotEnabled):
			return fmt.Errorf("nats-server at %s has JetStream disabled (start it with -js)", url)
		case errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount):
			return fmt.Errorf("nats-server at %s: JetStream is not enabled for this account", url)
		}
		return fmt.Errorf("nats-server at %s: JetStream account info: %w", url, err)
	}
	return nil
}

// checkVersion returns an error unless version (as reported in the server's
// INFO, e.g. "2.11.0" or "2.12.0-RC.1") is at least MinVersion.
func checkVersion(version, url string) error {
	major, minor, ok := parseVersion(version)
	if !ok {
		return fmt.Errorf("nats-server at %s reports an unparseable version %q (needs ≥ %s)", url, version, MinVersion)
	}
	if major < minMajor || (major == minMajor && minor < minMinor) {
		return fmt.Errorf("nats-server %s at %s lacks the consumer pause API (needs ≥ %s)", version, url, MinVersion)
	}
	return nil
}

// parseVersion reads the major and minor numbers of a semantic version; the
// patch number must be present and numeric, pre-release and build suffixes
// are ignored.
func parseVersion(v string) (major, minor int, ok bool) {
	core, _, _ := strings.Cut(v, "+")
	core, _, _ = strings.Cut(core, "-")
	parts := strings.Split(core, ".")
	if len(parts) != 3 {
		return 0, 0, false
	}
	var n [3]int
	for i, p := range parts {
		if p == "" || len(p) > 9 {
			return 0, 0, false
		}
		x, err := strconv.Atoi(p)
		if err != nil || x < 0 || p[0] == '+' {
			return 0, 0, false
		}
		n[i] = x
	}
	return n[0], n[1], true
}
