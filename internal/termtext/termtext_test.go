package termtext

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestEscape(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"429 from platform, Retry-After 1m0s", "429 from platform, Retry-After 1m0s"},
		{"Zürich – 東京", "Zürich – 東京"},
		{"\x1b]0;owned\x07title", `\x1b]0;owned\x07title`},
		{"red \x1b[31mtext\x1b[0m", `red \x1b[31mtext\x1b[0m`},
		{"line\nfake line\r\tcol", `line\x0afake line\x0d\x09col`},
		{"del\x7f", `del\x7f`},
		{"c1 \u009b31m", `c1 \u009b31m`},
		{"bidi \u202eevil\u2066", `bidi \u202eevil\u2066`},
		{"bad \xff\xfe utf8", `bad \xff\xfe utf8`},
	} {
		if got := Escape(tc.in); got != tc.want {
			t.Errorf("Escape(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := Lines("api: 400\n  job 0 (\x1b[2J): bad"); got != "api: 400\n  job 0 (\\x1b[2J): bad" {
		t.Errorf("Lines = %q", got)
	}
}

func FuzzEscape(f *testing.F) {
	for _, s := range []string{"plain", "\x1b[31m", "\u202e", "\xff", "a\nb", "\u009b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := Escape(s)
		if !utf8.ValidString(out) {
			t.Fatalf("Escape(%q) = %q: invalid UTF-8", s, out)
		}
		for _, r := range out {
			if r < 0x20 || r == 0x7f || unsafeRune(r) {
				t.Fatalf("Escape(%q) = %q keeps %U", s, out, r)
			}
		}
		if !needsEscape(s) && out != s {
			t.Fatalf("Escape changed plain %q to %q", s, out)
		}
		if strings.Contains(s, "\x1b") && strings.Contains(out, "\x1b") {
			t.Fatal("ESC survived")
		}
	})
}
