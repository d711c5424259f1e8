// Shared helpers of the BullMQ peer benchmark: the names and campaign ids
// orgdispatch's bench uses (internal/bench/setup.go, recorder.go), duration
// parsing, /proc sampling and the nearest-rank statistics of
// internal/bench/stats.go.

import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

// tenantID names tenant i of n like orgdispatch's bench: org_0 … org_9,
// org_000 … org_999.
export function tenantID(i, n) {
  const width = String(Math.max(n - 1, 0)).length;
  return 'org_' + String(i).padStart(width, '0');
}

export const clientID = (tenant) => 'client_' + tenant;
// The simulator's test credential of a tenant, as in orgdispatch's bench
// (not a real secret; never printed).
export const clientSecret = (tenant) => 'bench-secret-' + tenant;

// campaignID is the UUID-shaped campaign id of tenant's job seq:
// TTTTTTTT-0000-4000-8000-SSSSSSSSSSSS (hex), so the simulator's request
// log attributes every call to its tenant and job. seq 0 is the tenant's
// shared campaign (jobs whose latency is not measured).
export function campaignID(tenant, seq) {
  return tenant.toString(16).padStart(8, '0') + '-0000-4000-8000-' + seq.toString(16).padStart(12, '0');
}

export const campaignPrefix = '/api/v2/outbound/campaigns/';

// parseDuration reads "60s", "1m", "500ms", "1m30s" or a plain number of
// seconds and returns milliseconds.
export function parseDuration(s) {
  if (typeof s === 'number') return s * 1000;
  if (/^\d+(\.\d+)?$/.test(s)) return parseFloat(s) * 1000;
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;
  let total = 0;
  let consumed = 0;
  for (const m of s.matchAll(re)) {
    total += parseFloat(m[1]) * { ms: 1, s: 1000, m: 60000, h: 3600000 }[m[2]];
    consumed += m[0].length;
  }
  if (consumed !== s.length || consumed === 0) throw new Error(`not a duration: ${JSON.stringify(s)}`);
  return total;
}

// goDuration renders milliseconds for a Go duration flag.
export const goDuration = (ms) => `${Math.round(ms)}ms`;

let clkTck = 0;
function ticksPerSecond() {
  if (!clkTck) {
    try {
      clkTck = parseInt(execFileSync('getconf', ['CLK_TCK']).toString().trim(), 10) || 100;
    } catch {
      clkTck = 100;
    }
  }
  return clkTck;
}

// cpuSeconds is a process's user + system CPU time so far (all threads), or
// NaN when it is gone.
export function cpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields after the command: state(3) … utime(14) stime(15), 1-based.
    return (parseInt(f[11], 10) + parseInt(f[12], 10)) / ticksPerSecond();
  } catch {
    return NaN;
  }
}

// memStatus is a process's resident set and its peak, in MB.
export function memStatus(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (name) => {
      const m = s.match(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm'));
      return m ? parseInt(m[1], 10) : NaN;
    };
    return { rssMB: kb('VmRSS') / 1024, hwmMB: kb('VmHWM') / 1024 };
  } catch {
    return { rssMB: NaN, hwmMB: NaN };
  }
}

// rank is the 0-based index of the q-quantile among n sorted values
// (nearest rank), as in orgdispatch's bench.
export function rank(n, q) {
  return Math.max(0, Math.min(Math.ceil(q * n) - 1, n - 1));
}

// spread returns min, median (nearest rank) and max of xs.
export function spread(xs) {
  const s = Float64Array.from(xs).sort();
  return { min: s[0], median: s[rank(s.length, 0.5)], max: s[s.length - 1] };
}

// summarize is orgdispatch's Latency summary: p50 and p99 by nearest rank
// over all jobs, unserved jobs counting as slower than any served one (a
// quantile that falls on them is null, "unserved").
export function summarize(served, unserved) {
  const jobs = served.length + unserved;
  const out = { jobs, served: served.length, p50_ms: null, p99_ms: null, max_ms: null };
  if (jobs === 0) return out;
  const s = Float64Array.from(served).sort();
  const at = (q) => {
    const i = rank(jobs, q);
    return i < s.length ? s[i] : null;
  };
  out.p50_ms = at(0.5);
  out.p99_ms = at(0.99);
  if (unserved === 0 && s.length > 0) out.max_ms = s[s.length - 1];
  return out;
}

export const round = (v, d = 3) => (v == null || Number.isNaN(v) ? v : Math.round(v * 10 ** d) / 10 ** d);
