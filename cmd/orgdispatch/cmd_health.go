package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

func init() {
	register(command{
		name:    "health",
		summary: "probe a running serve, api or worker's /readyz (for container health checks)",
		run:     runHealth,
	})
}

const healthHelp = `Usage: orgdispatch health [--url URL] [--timeout D]

Asks a running orgdispatch process whether it is ready and exits 0 when it
answers 2xx, 1 otherwise (printing why). Meant for container health checks
in images without a shell or curl:

  healthcheck: {test: ["CMD", "/orgdispatch", "health"]}

The default URL is http://ORGDISPATCH_HTTP_ADDR/readyz (a wildcard host such
as 0.0.0.0 becomes 127.0.0.1; default address 127.0.0.1:8080).

Flags:
`

// defaultHealthAddr is ORGDISPATCH_HTTP_ADDR's default (internal/config).
const defaultHealthAddr = "127.0.0.1:8080"

func runHealth(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("health", healthHelp, stderr)
	url := fs.String("url", "", "URL to GET (default: /readyz on ORGDISPATCH_HTTP_ADDR)")
	timeout := fs.Duration("timeout", 3*time.Second, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return usageErr(err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	if *url == "" {
		u, err := readyzURL(os.Getenv(envHTTPAddr))
		if err != nil {
			return err
		}
		*url = u
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *url, nil)
	if err != nil {
		return fmt.Errorf("%w: --url: %v", errUsage, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("not healthy: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("not healthy: %s answered %s: %s", *url, resp.Status, strings.TrimSpace(string(body)))
	}
	fmt.Fprintf(stdout, "healthy: %s %s\n", *url, esc(strings.TrimSpace(string(body))))
	return nil
}

// readyzURL is the /readyz URL of a process listening on addr.
func readyzURL(addr string) (string, error) {
	if addr == "" {
		addr = defaultHealthAddr
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("%s %q: want host:port", envHTTPAddr, addr)
	}
	switch host {
	case "", "0.0.0.0", "::", "[::]":
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/readyz", nil
}
