package faultsuite

import (
	"fmt"
	"strings"
	"text/tabwriter"
)

// Text is the result as a small table, for logs.
func (res *Result) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s; %s; fault at %.1f s", res.Scenario, res.Fault, res.Layout, res.FaultAtSec)
	if res.RestoreAtSec > 0 {
		fmt.Fprintf(&b, ", undone at %.1f s", res.RestoreAtSec)
	}
	fmt.Fprintf(&b, ", load %.1f s, drained %v after %.1f s\n", res.LoadSec, res.Drained, res.DrainSec)
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "tenant\tin flight\tpublished\tsucceeded\tdead\tlost\tdup\tunconfirmed\tlongest stall s\tstall at s\trecover s\tslowest job s\t")
	for _, t := range res.Tenants {
		name := t.Tenant
		if t.Targeted {
			name += " (targeted)"
		}
		if t.ConsumerLeader != "" {
			name += " [consumer on " + t.ConsumerLeader + "]"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%.1f\t%s\t%.1f\t\n", name, t.InFlightAtFault, t.Published, t.Succeeded, t.DeadLettered, t.Lost, t.Duplicates, t.Unconfirmed,
			t.StallText(), t.StallAtSec, t.RecoverText(), t.SlowestJobSec)
	}
	fmt.Fprintf(tw, "all\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t\t\t\t\t\n", res.InFlightAtFault, res.Published, res.Succeeded, res.DeadLettered, res.Lost, res.Duplicates, res.Unconfirmed)
	tw.Flush()
	if res.AckedJustBefore > 0 {
		fmt.Fprintf(&b, "acknowledged within %s before the fault (may come again as duplicates): %d\n", AckStateWindow, res.AckedJustBefore)
	}
	for _, e := range res.Exited {
		fmt.Fprintf(&b, "unexpected exit: %s\n", e)
	}
	for _, n := range res.Notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	return b.String()
}

// StallText is the longest stall in seconds, "≥ x" when it had not ended
// by the load's end.
func (t TenantResult) StallText() string {
	if t.StallOpen {
		return fmt.Sprintf("≥ %.1f", t.LongestStallSec)
	}
	return fmt.Sprintf("%.1f", t.LongestStallSec)
}

// RecoverText is the time to recover in seconds, or "not by load end".
func (t TenantResult) RecoverText() string {
	if !t.Recovered {
		return "not by load end"
	}
	return fmt.Sprintf("%.1f", t.RecoverSec)
}
