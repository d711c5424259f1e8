package platform_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/orgdispatch/orgdispatch/platform"
)

func ExampleClient_Do() {
	// A stand-in for Genesys Cloud: a token endpoint and one 429.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/oauth/token" {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"access_token":"t","token_type":"bearer","expires_in":86400}`)
			return
		}
		w.Header().Set("Retry-After", "30")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = io.WriteString(w, `{"status":429,"code":"too.many.requests","message":"Rate limit exceeded"}`)
	}))
	defer srv.Close()

	// In production: apiBase, tokenURL, _ := platform.Endpoints("eu-west-1").
	c, err := platform.New(platform.Config{
		APIBase:      srv.URL,
		TokenURL:     srv.URL + "/oauth/token",
		ClientID:     "client-org1",
		ClientSecret: "secret",
	})
	if err != nil {
		panic(err)
	}
	_, err = c.Do(context.Background(), platform.OpCampaignStart, json.RawMessage(`{"campaign_id":"c-1"}`))

	var rl *platform.RateLimitError
	var pe *platform.PermanentError
	switch {
	case errors.As(err, &rl):
		fmt.Println("pause the tenant for", rl.RetryAfter, "-", rl.Code)
	case errors.As(err, &pe):
		fmt.Println("dead-letter:", pe)
	case err != nil:
		fmt.Println("retry later:", err)
	default:
		fmt.Println("done")
	}
	// Output: pause the tenant for 30s - too.many.requests
}

func ExampleValidateParams() {
	err := platform.ValidateParams(platform.OpAPIRequest, json.RawMessage(`{"method":"GET","path":"/api/v2/outbound/%2e%2e/users"}`))
	fmt.Println(err)
	// Output: platform: invalid api.request request: path "/api/v2/outbound/%2e%2e/users": must not percent-encode '.', '/', '\' or '%'
}
