package natsserver

import (
	"context"
	"fmt"
	"log/slog"
)

// levelTrace is the slog level of the server's trace lines: below Debug, so a
// handler at Debug does not see the per-message protocol trace.
const levelTrace = slog.LevelDebug - 4

// logger adapts an slog.Logger to nats-server's server.Logger.
type logger struct{ l *slog.Logger }

func (g logger) enabled(level slog.Level) bool {
	return g.l.Enabled(context.Background(), level)
}

func (g logger) log(level slog.Level, format string, v []any) {
	if !g.enabled(level) {
		return
	}
	g.l.Log(context.Background(), level, fmt.Sprintf(format, v...), "component", "nats-server")
}

// Noticef logs the server's notices (start-up, shutdown, JetStream state) at Info.
func (g logger) Noticef(format string, v ...any) { g.log(slog.LevelInfo, format, v) }

// Warnf logs at Warn.
func (g logger) Warnf(format string, v ...any) { g.log(slog.LevelWarn, format, v) }

// Fatalf logs at Error. Unlike nats-server's own logger it does not exit the
// process: the embedding program decides what a failed server means.
func (g logger) Fatalf(format string, v ...any) {
	g.l.Log(context.Background(), slog.LevelError, fmt.Sprintf(format, v...), "component", "nats-server", "fatal", true)
}

// Errorf logs at Error.
func (g logger) Errorf(format string, v ...any) { g.log(slog.LevelError, format, v) }

// Debugf logs at Debug.
func (g logger) Debugf(format string, v ...any) { g.log(slog.LevelDebug, format, v) }

// Tracef logs at levelTrace.
func (g logger) Tracef(format string, v ...any) { g.log(levelTrace, format, v) }
