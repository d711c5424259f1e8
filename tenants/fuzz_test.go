package tenants

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func FuzzParse(f *testing.F) {
	f.Add([]byte("tenants:\n  - {id: a, client_id: c, client_secret_env: ORG1_SECRET}\n"))
	f.Add([]byte("defaults: {region: eu-west-1, rate: auto, burst: 2, allowed_paths: [/api/v2/x/]}\ntenants:\n  - {id: a, client_id: c, client_secret_file: /run/secrets/org1, concurrency: 9}\n"))
	f.Add([]byte("tenants:\n  - &x {id: a, client_id: c, client_secret: s, api_base: 'http://h', token_url: 'http://h/t'}\n  - {<<: *x, id: b}\n"))
	f.Add([]byte("tenants:\n  - {id: a, rate_per_minite: 1}\n  - {id: a}\n"))
	f.Add([]byte("tenants: [*a]"))
	f.Add([]byte("a: &a [*a]"))
	if ex, err := os.ReadFile(filepath.Join("..", "examples", "tenants.yaml")); err == nil {
		f.Add(ex)
	}
	secrets := []string{"env-secret-1", "env-secret-2", "file-secret-1", "file-secret-crlf", "file-secret-plain"}
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse(data, lookupEnv, readFile)
		if err != nil {
			if file != nil {
				t.Fatal("file and error both returned")
			}
			for _, s := range secrets {
				if strings.Contains(err.Error(), s) && !strings.Contains(string(data), s) {
					t.Fatalf("error shows secret %q: %v", s, err)
				}
			}
			return
		}
		if len(file.Tenants) == 0 {
			t.Fatal("accepted a file without tenants")
		}
		seen := map[string]bool{}
		for _, tn := range file.Tenants {
			if err := tn.Validate(); err != nil {
				t.Fatalf("accepted an invalid tenant: %v", err)
			}
			if seen[tn.ID] {
				t.Fatalf("accepted duplicate id %q", tn.ID)
			}
			seen[tn.ID] = true
			if got, ok := file.Get(tn.ID); !ok || got.ID != tn.ID {
				t.Fatalf("Get(%q) failed", tn.ID)
			}
		}
	})
}
