// Package termtext makes text from remote sources safe to print on a
// terminal. A platform's error body, a pause reason, a dead letter's
// headers or an API error can carry escape sequences (to retitle the
// window, rewrite earlier lines, hide text or worse); the CLI prints every
// such string through Escape.
package termtext

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Escape returns s with every control character escaped, so that printing
// it cannot drive the terminal: C0 controls (including tab, newline and
// ESC) and DEL as \xNN, C1 controls and the Unicode bidirectional
// overrides and isolates (which reorder what is shown) as \uNNNN, and each
// byte of invalid UTF-8 as \xNN. Printable text, including non-ASCII, is
// kept as is.
func Escape(s string) string {
	if !needsEscape(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case unsafeRune(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// Lines is Escape for a multi-line message (such as an error listing
// several items): each line is escaped, the newlines between them kept.
func Lines(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = Escape(l)
	}
	return strings.Join(lines, "\n")
}

func needsEscape(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f {
			return true // a control, DEL, or non-ASCII to look at closer
		}
	}
	return false
}

// unsafeRune reports a C1 control or a bidirectional formatting character.
func unsafeRune(r rune) bool {
	return (r >= 0x80 && r <= 0x9f) || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) || r == 0x200e || r == 0x200f || r == 0x061c
}
