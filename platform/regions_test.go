package platform

import (
	"strings"
	"testing"
)

func TestEndpoints(t *testing.T) {
	tests := []struct{ region, api, token string }{
		{"us-east-1", "https://api.mypurecloud.com", "https://login.mypurecloud.com/oauth/token"},
		{"us-east-2", "https://api.use2.us-gov-pure.cloud", "https://login.use2.us-gov-pure.cloud/oauth/token"},
		{"us-west-2", "https://api.usw2.pure.cloud", "https://login.usw2.pure.cloud/oauth/token"},
		{"ca-central-1", "https://api.cac1.pure.cloud", "https://login.cac1.pure.cloud/oauth/token"},
		{"sa-east-1", "https://api.sae1.pure.cloud", "https://login.sae1.pure.cloud/oauth/token"},
		{"mx-central-1", "https://api.mxc1.pure.cloud", "https://login.mxc1.pure.cloud/oauth/token"},
		{"eu-west-1", "https://api.mypurecloud.ie", "https://login.mypurecloud.ie/oauth/token"},
		{"eu-west-2", "https://api.euw2.pure.cloud", "https://login.euw2.pure.cloud/oauth/token"},
		{"eu-central-1", "https://api.mypurecloud.de", "https://login.mypurecloud.de/oauth/token"},
		{"eu-central-2", "https://api.euc2.pure.cloud", "https://login.euc2.pure.cloud/oauth/token"},
		{"me-central-1", "https://api.mec1.pure.cloud", "https://login.mec1.pure.cloud/oauth/token"},
		{"ap-south-1", "https://api.aps1.pure.cloud", "https://login.aps1.pure.cloud/oauth/token"},
		{"ap-northeast-1", "https://api.mypurecloud.jp", "https://login.mypurecloud.jp/oauth/token"},
		{"ap-northeast-2", "https://api.apne2.pure.cloud", "https://login.apne2.pure.cloud/oauth/token"},
		{"ap-northeast-3", "https://api.apne3.pure.cloud", "https://login.apne3.pure.cloud/oauth/token"},
		{"ap-southeast-1", "https://api.apse1.pure.cloud", "https://login.apse1.pure.cloud/oauth/token"},
		{"ap-southeast-2", "https://api.mypurecloud.com.au", "https://login.mypurecloud.com.au/oauth/token"},
		{"eusc-de-east-1", "https://api.edee1.eusc-pure.cloud", "https://login.edee1.eusc-pure.cloud/oauth/token"},
	}
	if got := len(Regions()); got != len(tests) {
		t.Fatalf("Regions() has %d entries, the table %d", got, len(tests))
	}
	for _, tt := range tests {
		api, token, err := Endpoints(tt.region)
		if err != nil || api != tt.api || token != tt.token {
			t.Errorf("Endpoints(%q) = %q, %q, %v; want %q, %q", tt.region, api, token, err, tt.api, tt.token)
		}
	}
}

func TestEndpointsUnknownRegion(t *testing.T) {
	for _, r := range []string{"", "us-east-9", "US-EAST-1", "mypurecloud.com"} {
		_, _, err := Endpoints(r)
		if err == nil {
			t.Fatalf("Endpoints(%q): want an error", r)
		}
		for _, valid := range Regions() {
			if !strings.Contains(err.Error(), valid) {
				t.Fatalf("Endpoints(%q) error %q does not list %q", r, err, valid)
			}
		}
	}
}

func TestRegionsSorted(t *testing.T) {
	rs := Regions()
	for i := 1; i < len(rs); i++ {
		if rs[i-1] >= rs[i] {
			t.Fatalf("Regions() not sorted: %q before %q", rs[i-1], rs[i])
		}
	}
}
