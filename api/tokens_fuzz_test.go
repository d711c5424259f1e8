package api_test

import (
	"strings"
	"testing"

	"github.com/orgdispatch/orgdispatch/api"
)

// FuzzParseTokens: any tokens file is accepted or refused without a panic,
// and an error never shows a token.
func FuzzParseTokens(f *testing.F) {
	f.Add("tokens:\n  - {name: a, token_env: T, tenants: [org_1], rights: [read]}\n")
	f.Add("tokens:\n  - {name: a, token_file: /f, tenants: ['*'], rights: [publish, metrics]}\n")
	f.Add("tokens: [{name: a, token: inline}]")
	f.Add("{")
	const secret = "fuzz-secret-token-value"
	env := func(string) (string, bool) { return secret, true }
	read := func(string) ([]byte, error) { return []byte(secret + "\n"), nil }
	f.Fuzz(func(t *testing.T, doc string) {
		ts, err := api.ParseTokens([]byte(doc), env, read)
		if err != nil {
			if strings.Contains(err.Error(), secret) && !strings.Contains(doc, secret) {
				t.Fatalf("the error shows the token: %v", err)
			}
			return
		}
		if ts.Len() == 0 {
			t.Fatal("an accepted file with no tokens")
		}
	})
}
