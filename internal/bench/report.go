package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is one scenario's result: the machine, the setup, the figures as
// tables and as typed values, and each target marked met or missed.
type Report struct {
	Scenario string    `json:"scenario"`
	Summary  string    `json:"summary"`
	Started  time.Time `json:"started"`
	// ElapsedSec is the scenario's wall time, set-up and tear-down included.
	ElapsedSec float64   `json:"elapsed_sec"`
	Machine    Machine   `json:"machine"`
	Setup      []Setting `json:"setup"`
	Tables     []Table   `json:"tables"`
	Targets    []Target  `json:"targets"`
	Notes      []string  `json:"notes,omitempty"`
	// Figures holds the scenario's measurements as typed values (the tables
	// format the same numbers).
	Figures any `json:"figures"`
	// Plot is the scenario's picture, when it has one (see WriteSVG).
	Plot *Plot `json:"plot,omitempty"`
}

// Setting is one stated parameter of a scenario: a quota, a worker count, a
// duration.
type Setting struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Table is a titled table of formatted figures.
type Table struct {
	Title   string     `json:"title"`
	Columns []string   `json:"columns"`
	Rows    [][]string `json:"rows"`
}

// Target is one goal of a scenario, judged from the measured figures.
type Target struct {
	Name string `json:"name"`
	Want string `json:"want"`
	Got  string `json:"got"`
	Met  bool   `json:"met"`
}

// AllMet reports whether every target was met.
func (r *Report) AllMet() bool {
	for _, t := range r.Targets {
		if !t.Met {
			return false
		}
	}
	return true
}

func (r *Report) set(name, format string, args ...any) {
	r.Setup = append(r.Setup, Setting{Name: name, Value: fmt.Sprintf(format, args...)})
}

func (r *Report) note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

func (r *Report) target(name, want string, met bool, gotFormat string, args ...any) {
	r.Targets = append(r.Targets, Target{Name: name, Want: want, Got: fmt.Sprintf(gotFormat, args...), Met: met})
}

func (r *Report) table(title string, columns ...string) *Table {
	r.Tables = append(r.Tables, Table{Title: title, Columns: columns})
	return &r.Tables[len(r.Tables)-1]
}

func (t *Table) row(cells ...string) { t.Rows = append(t.Rows, cells) }

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("bench: encode %s report: %w", r.Scenario, err)
	}
	return nil
}

// WriteText prints the report for people: machine, setup, tables, targets.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "== orgdispatch bench %s: %s\n", r.Scenario, r.Summary)
	m := r.Machine
	mode := m.NATSMode
	if mode == "" {
		mode = "embedded"
	}
	fmt.Fprintf(&b, "machine: %d cores (%s), GOMAXPROCS %d, %d MiB RAM (%d available), %s %s/%s, nats-server %s (%s), load avg 1m %.2f at start, %.2f at end\n",
		m.Cores, m.CPUModel, m.GOMAXPROCS, m.MemTotalMB, m.MemAvailMB, m.GoVersion, m.OS, m.Arch, m.NATSServer, mode, m.LoadAvgStart, m.LoadAvgEnd)
	fmt.Fprintf(&b, "started %s, took %.1f s\n", r.Started.Format(time.RFC3339), r.ElapsedSec)
	if len(r.Setup) > 0 {
		b.WriteString("\nsetup:\n")
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		for _, s := range r.Setup {
			fmt.Fprintf(tw, "  %s\t%s\n", s.Name, s.Value)
		}
		tw.Flush()
	}
	for _, t := range r.Tables {
		fmt.Fprintf(&b, "\n%s\n", t.Title)
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(tw, "%s\t\n", strings.Join(t.Columns, "\t"))
		for _, row := range t.Rows {
			fmt.Fprintf(tw, "%s\t\n", strings.Join(row, "\t"))
		}
		tw.Flush()
	}
	if len(r.Targets) > 0 {
		b.WriteString("\ntargets:\n")
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		for _, t := range r.Targets {
			mark := "MET"
			if !t.Met {
				mark = "MISSED"
			}
			fmt.Fprintf(tw, "  [%s]\t%s\twant %s\tgot %s\n", mark, t.Name, t.Want, t.Got)
		}
		tw.Flush()
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
