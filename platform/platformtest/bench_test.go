package platformtest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// benchTokens issues one token per client straight through the handler.
func benchTokens(b *testing.B, sim *Simulator, creds []ClientCred) []string {
	b.Helper()
	toks := make([]string, len(creds))
	for i, c := range creds {
		req := httptest.NewRequest("POST", tokenPath, strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
		req.SetBasicAuth(c.ID, c.Secret)
		rec := httptest.NewRecorder()
		sim.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatalf("token: %d %s", rec.Code, rec.Body)
		}
		var tr tokenResponse
		if err := json.Unmarshal(rec.Body.Bytes(), &tr); err != nil {
			b.Fatal(err)
		}
		toks[i] = tr.AccessToken
	}
	return toks
}

func benchClients(n int) []ClientCred {
	creds := make([]ClientCred, n)
	for i := range creds {
		creds[i] = ClientCred{ID: fmt.Sprintf("client_%d", i), Secret: "s", Org: fmt.Sprintf("org_%d", i)}
	}
	return creds
}

// BenchmarkHandler measures the simulator's own cost per API request
// (campaign start, rate-limited, recorded), without the network.
func BenchmarkHandler(b *testing.B) {
	for _, n := range []int{1, 1000} {
		b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) {
			creds := benchClients(n)
			sim := New(Config{Clients: creds, Limit: 1 << 30, AutoCreate: true})
			toks := benchTokens(b, sim, creds)
			var next atomic.Uint64
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					tok := toks[next.Add(1)%uint64(len(toks))]
					req := httptest.NewRequest("POST", "/api/v2/outbound/campaigns/c1/start", nil)
					req.Header.Set("Authorization", "Bearer "+tok)
					rec := httptest.NewRecorder()
					sim.ServeHTTP(rec, req)
					if rec.Code != 200 {
						b.Fatalf("status %d", rec.Code)
					}
				}
			})
		})
	}
}

// BenchmarkLoopback measures requests per second over real HTTP on
// 127.0.0.1 with keep-alive connections.
func BenchmarkLoopback(b *testing.B) {
	creds := benchClients(100)
	srv := NewServer(b, Config{Clients: creds, Limit: 1 << 30, AutoCreate: true})
	toks := benchTokens(b, srv.Simulator, creds)
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	var next atomic.Uint64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("GET", srv.URL+"/api/v2/outbound/campaigns/c1", nil)
			req.Header.Set("Authorization", "Bearer "+toks[next.Add(1)%uint64(len(toks))])
			resp, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Fatalf("status %d", resp.StatusCode)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}
