package api_test

import (
	"errors"
	"fmt"

	"github.com/orgdispatch/orgdispatch/api"
)

func ExampleCheckListen() {
	// Loopback without a token is fine; every interface needs a token.
	fmt.Println(api.CheckListen("127.0.0.1:8080", "", false))
	err := api.CheckListen(":8080", "", false)
	fmt.Println(errors.Is(err, api.ErrInsecureListen))
	fmt.Println(api.CheckListen(":8080", "a-long-random-token", false))
	// Output:
	// <nil>
	// true
	// <nil>
}

// A tokens file: an upstream system that may only publish for its own
// orgs, and a read-only dashboard. The tokens come from the environment
// or from files, never from the file itself.
func ExampleParseTokens() {
	doc := []byte(`tokens:
  - name: crm-eu
    token_env: CRM_EU_API_TOKEN
    tenants: [org_1, org_2]
    rights: [publish]
  - name: dashboard
    token_env: DASHBOARD_API_TOKEN
    tenants: ["*"]
    rights: [read]
`)
	env := map[string]string{"CRM_EU_API_TOKEN": "9f2c…long-random", "DASHBOARD_API_TOKEN": "71ab…long-random"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	ts, err := api.ParseTokens(doc, lookup, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(ts.Names())
	// Output:
	// [crm-eu dashboard]
}
