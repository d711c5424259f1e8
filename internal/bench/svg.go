package bench

import (
	"fmt"
	"html"
	"io"
	"math"
	"strings"
)

// Plot is a row of small-multiple line charts sharing their axes, e.g. the
// per-tenant goodput over time of each isolation mode.
type Plot struct {
	Title  string  `json:"title"`
	XLabel string  `json:"x_label"`
	YLabel string  `json:"y_label"`
	XStep  float64 `json:"x_step"` // x distance between consecutive values (e.g. 1 s buckets)
	// YMax, when > 0, caps the y axis: larger values are drawn at the top
	// edge and labelled with their value.
	YMax   float64 `json:"y_max,omitempty"`
	Panels []Panel `json:"panels"`
}

// Panel is one chart of a Plot.
type Panel struct {
	Title  string    `json:"title"`
	Series []Series  `json:"series"`
	Refs   []RefLine `json:"refs,omitempty"`
}

// Series is one line. Series with the same Style share colour and weight and
// appear once in the legend, under the first series' Legend.
type Series struct {
	Name   string    `json:"name"`
	Style  string    `json:"style"` // "highlight" or "normal"
	Legend string    `json:"legend"`
	Values []float64 `json:"values"`
}

// RefLine is a horizontal reference line, e.g. a quota.
type RefLine struct {
	Label string  `json:"label"`
	Y     float64 `json:"y"`
}

var seriesStyles = map[string]struct{ color, width, opacity string }{
	"highlight": {"#d62728", "2.2", "0.95"},
	"normal":    {"#1f77b4", "1.1", "0.55"},
}

// WriteSVG draws the report's plot as a self-contained SVG. It fails when
// the scenario has no plot.
func (r *Report) WriteSVG(w io.Writer) error {
	if r.Plot == nil {
		return fmt.Errorf("bench: scenario %s draws no plot", r.Scenario)
	}
	_, err := io.WriteString(w, r.Plot.svg())
	return err
}

func (p *Plot) svg() string {
	const (
		panelW, panelH = 330.0, 230.0
		left, right    = 52.0, 14.0
		top, bottom    = 74.0, 46.0
		gap            = 18.0
	)
	n := len(p.Panels)
	if n == 0 {
		n = 1
	}
	width := left + float64(n)*panelW + float64(n-1)*gap + right
	height := top + panelH + bottom
	ymax, xmax := 0.0, 0
	for _, pn := range p.Panels {
		for _, s := range pn.Series {
			for _, v := range s.Values {
				ymax = math.Max(ymax, v)
			}
			xmax = max(xmax, len(s.Values))
		}
		for _, rl := range pn.Refs {
			ymax = math.Max(ymax, rl.Y)
		}
	}
	if p.YMax > 0 && ymax > p.YMax {
		ymax = p.YMax
	}
	ymax, ystep := niceAxis(ymax)
	xspan := float64(xmax) * p.XStep
	if xspan <= 0 {
		xspan = 1
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="Helvetica, Arial, sans-serif" font-size="11">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%.0f" y="20" font-size="14" font-weight="bold">%s</text>`+"\n", left, esc(p.Title))
	// Legend: one entry per style, then the reference lines.
	lx := left
	seen := map[string]bool{}
	for _, pn := range p.Panels {
		for _, s := range pn.Series {
			if seen[s.Style] {
				continue
			}
			seen[s.Style] = true
			st := style(s.Style)
			fmt.Fprintf(&b, `<line x1="%.0f" y1="38" x2="%.0f" y2="38" stroke="%s" stroke-width="%s"/>`, lx, lx+22, st.color, st.width)
			fmt.Fprintf(&b, `<text x="%.0f" y="42">%s</text>`+"\n", lx+28, esc(s.Legend))
			lx += 40 + 6.2*float64(len(s.Legend))
		}
	}
	if len(p.Panels) > 0 {
		for _, rl := range p.Panels[0].Refs {
			fmt.Fprintf(&b, `<line x1="%.0f" y1="38" x2="%.0f" y2="38" stroke="#555" stroke-dasharray="4 3"/>`, lx, lx+22)
			fmt.Fprintf(&b, `<text x="%.0f" y="42">%s</text>`+"\n", lx+28, esc(rl.Label))
			lx += 40 + 6.2*float64(len(rl.Label))
		}
	}
	for i, pn := range p.Panels {
		x0 := left + float64(i)*(panelW+gap)
		y0 := top
		sx := func(x float64) float64 { return x0 + x/xspan*panelW }
		sy := func(y float64) float64 { return y0 + panelH - math.Min(y, ymax)/ymax*panelH }
		fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" font-size="12" font-weight="bold">%s</text>`+"\n", x0, y0-10, esc(pn.Title))
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#fafafa" stroke="#999"/>`+"\n", x0, y0, panelW, panelH)
		for y := 0.0; y <= ymax+ystep/2; y += ystep {
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#e3e3e3"/>`, x0, sy(y), x0+panelW, sy(y))
			if i == 0 {
				fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="end">%s</text>`, x0-5, sy(y)+4, fmtTick(y))
			}
			b.WriteString("\n")
		}
		_, xstep := niceAxis(xspan)
		for x := 0.0; x <= xspan+xstep/2; x += xstep {
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", sx(x), y0+panelH+15, fmtTick(x))
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", x0+panelW/2, y0+panelH+34, esc(p.XLabel))
		for _, rl := range pn.Refs {
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#555" stroke-dasharray="4 3"/>`+"\n", x0, sy(rl.Y), x0+panelW, sy(rl.Y))
		}
		// Normal series first, highlighted ones on top.
		for _, pass := range []bool{false, true} {
			for _, s := range pn.Series {
				if (s.Style == "highlight") != pass || len(s.Values) == 0 {
					continue
				}
				st := style(s.Style)
				pts := make([]string, 0, len(s.Values))
				for j, v := range s.Values {
					// Each value is the mean over its bucket: draw it at the bucket's middle.
					pts = append(pts, fmt.Sprintf("%.1f,%.1f", sx((float64(j)+0.5)*p.XStep), sy(v)))
				}
				fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="%s" stroke-opacity="%s" stroke-linejoin="round" points="%s"><title>%s</title></polyline>`+"\n",
					st.color, st.width, st.opacity, strings.Join(pts, " "), esc(s.Name))
			}
		}
		// Values beyond the axis: the largest at each x, labelled at the top.
		for j := 0; j < xmax; j++ {
			top, color := 0.0, ""
			for _, s := range pn.Series {
				if j < len(s.Values) && s.Values[j] > ymax && s.Values[j] > top {
					top, color = s.Values[j], style(s.Style).color
				}
			}
			if color != "" {
				fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="9" fill="%s">↑%s</text>`+"\n", sx((float64(j)+0.5)*p.XStep)+3, y0+10, color, fmtTick(math.Round(top)))
			}
		}
	}
	fmt.Fprintf(&b, `<text transform="translate(14 %.1f) rotate(-90)" text-anchor="middle">%s</text>`+"\n", top+panelH/2, esc(p.YLabel))
	b.WriteString("</svg>\n")
	return b.String()
}

func style(name string) struct{ color, width, opacity string } {
	if st, ok := seriesStyles[name]; ok {
		return st
	}
	return seriesStyles["normal"]
}

// niceAxis rounds v up to a round axis maximum and returns it with a tick
// step giving 4–10 ticks.
func niceAxis(v float64) (top, step float64) {
	if v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 1, 0.25
	}
	mag := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{0.1, 0.2, 0.25, 0.5, 1, 2, 2.5, 5, 10} {
		step = m * mag
		if v/step <= 8 {
			break
		}
	}
	top = math.Ceil(v/step) * step
	return top, step
}

func fmtTick(v float64) string {
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.2f", v), "0"), ".")
}

func esc(s string) string { return html.EscapeString(s) }
