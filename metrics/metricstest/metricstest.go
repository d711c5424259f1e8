// Package metricstest reads samples out of parsed Prometheus metric families
// (expfmt.TextParser's output) for tests of the /metrics page.
package metricstest

import dto "github.com/prometheus/client_model/go"

// Value finds the sample of family name whose labels include labels
// (name, value pairs): a counter's or gauge's value, a histogram's sample
// count. ok is false when there is none.
func Value(fams map[string]*dto.MetricFamily, name string, labels ...string) (value float64, ok bool) {
next:
	for _, m := range fams[name].GetMetric() {
		have := map[string]string{}
		for _, lp := range m.GetLabel() {
			have[lp.GetName()] = lp.GetValue()
		}
		for i := 0; i+1 < len(labels); i += 2 {
			if have[labels[i]] != labels[i+1] {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}
