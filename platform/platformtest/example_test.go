package platformtest_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"

	"github.com/orgdispatch/orgdispatch/platform/platformtest"
)

// A token from the client-credentials grant, then a campaign start. Tests
// use platformtest.NewServer(t, cfg), which does the httptest part.
func Example() {
	sim := platformtest.New(platformtest.Config{
		Clients:   []platformtest.ClientCred{{ID: "client_org1", Secret: "secret1", Org: "org_1"}},
		Limit:     300,
		Campaigns: map[string][]platformtest.Campaign{"org_1": {{ID: "c1", Name: "Spring sale"}}},
	})
	srv := httptest.NewServer(sim)
	defer srv.Close()

	req, _ := http.NewRequest("POST", srv.URL+"/oauth/token",
		strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("client_org1", "secret1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	fmt.Println("token", resp.StatusCode, tok.ExpiresIn)

	req, _ = http.NewRequest("POST", srv.URL+"/api/v2/outbound/campaigns/c1/start", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	fmt.Println("start", resp.StatusCode, "correlation id", len(resp.Header.Get("ININ-Correlation-Id")) == 36,
		"legacy headers", resp.Header.Get("inin-ratelimit-count") != "")

	c, _ := sim.Campaign("org_1", "c1")
	fmt.Println(c.CampaignStatus, c.Version)
	// Output:
	// token 200 86400
	// start 204 correlation id true legacy headers false
	// on 2
}
