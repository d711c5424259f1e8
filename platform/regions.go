package platform

import (
	"fmt"
	"sort"
	"strings"
)

// regionDomains maps an AWS region name to the Genesys Cloud domain serving
// it. The API host is "api." + domain and the OAuth host is "login." + domain
// (see platform-facts.md).
var regionDomains = map[string]string{
	"us-east-1":      "mypurecloud.com",
	"us-east-2":      "use2.us-gov-pure.cloud", // FedRAMP
	"us-west-2":      "usw2.pure.cloud",
	"ca-central-1":   "cac1.pure.cloud",
	"sa-east-1":      "sae1.pure.cloud",
	"mx-central-1":   "mxc1.pure.cloud",
	"eu-west-1":      "mypurecloud.ie",
	"eu-west-2":      "euw2.pure.cloud",
	"eu-central-1":   "mypurecloud.de",
	"eu-central-2":   "euc2.pure.cloud",
	"me-central-1":   "mec1.pure.cloud",
	"ap-south-1":     "aps1.pure.cloud",
	"ap-northeast-1": "mypurecloud.jp",
	"ap-northeast-2": "apne2.pure.cloud",
	"ap-northeast-3": "apne3.pure.cloud",
	"ap-southeast-1": "apse1.pure.cloud",
	"ap-southeast-2": "mypurecloud.com.au",
	"eusc-de-east-1": "edee1.eusc-pure.cloud", // EU Sovereign Cloud
}

// Endpoints returns the API base URL and the OAuth token URL of a Genesys
// Cloud region, named as its AWS region (e.g. "eu-west-1" →
// https://api.mypurecloud.ie and https://login.mypurecloud.ie/oauth/token).
// An unknown region is an error that lists the valid ones.
func Endpoints(region string) (apiBase, tokenURL string, err error) {
	domain, ok := regionDomains[region]
	if !ok {
		return "", "", fmt.Errorf("platform: unknown region %q (valid: %s)", region, strings.Join(Regions(), ", "))
	}
	return "https://api." + domain, "https://login." + domain + "/oauth/token", nil
}

// Regions lists the region names Endpoints knows, sorted.
func Regions() []string {
	out := make([]string, 0, len(regionDomains))
	for r := range regionDomains {
		out = append(out, r)
	}
	sort.Strings(out)
	return out
}
