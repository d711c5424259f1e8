package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/orgdispatch/orgdispatch/api"
)

// The admin commands (status, pause, resume, dlq, audit) talk to a running API, not
// to NATS: these variables say where it is.
const (
	envAPIURL   = "ORGDISPATCH_API_URL"   // default api.DefaultURL (http://127.0.0.1:8080)
	envAPIToken = "ORGDISPATCH_API_TOKEN" // the bearer token, when the API requires one
)

const apiEnvHelp = `
The API is found through ORGDISPATCH_API_URL (default ` + api.DefaultURL + `),
authenticated with ORGDISPATCH_API_TOKEN when the server requires a token.
`

// newAPIClient returns a client of the API the environment names.
func newAPIClient() (*api.Client, error) {
	return api.NewClient(os.Getenv(envAPIURL), os.Getenv(envAPIToken), nil)
}

// parseInterspersed parses flags that may come before, between or after
// the positional arguments (flag.Parse stops at the first positional one),
// and returns the positional arguments.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// newFlagSet returns a flag set whose usage prints help then the flags.
func newFlagSet(name, help string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), help)
		fs.PrintDefaults()
	}
	return fs
}
