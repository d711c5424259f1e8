// The load generator: an open loop (the schedule does not wait for the
// system under test), one steady flow per tenant with phases spread, as in
// orgdispatch's bench (internal/bench/loadgen.go). Each job is a Queue.add
// to its tenant's queue over one shared Redis connection; a job counts as
// published at the time its add started, once Redis accepted it.

import { writeFileSync } from 'node:fs';
import { Queue } from 'bullmq';
import IORedis from 'ioredis';

let cfg;
let queues;
let pub; // Int32Array [tenant*nb + bucket], published jobs by start time
let nb;
let seqCounter = 0;
const tracked = []; // [seq, tenant, pubAt ms since epoch]
const lags = [];
let published = 0;
let failed = 0;
let late = 0;
let inflight = 0;
let firstErr = '';
let ended = false; // no more jobs scheduled
let stopping = false; // adds completing from now on are late: not counted
let finished;
const maxInflight = 4096; // like the Go bench's async publish window

async function prepare(c) {
  cfg = c;
  nb = Math.ceil(cfg.spanMs / cfg.bucketMs) + 1;
  pub = new Int32Array(cfg.flows.length * nb);
  const connection = new IORedis({ host: '127.0.0.1', port: cfg.redisPort, maxRetriesPerRequest: null });
  queues = cfg.flows.map((f) => new Queue(f.id, { connection, defaultJobOptions: cfg.jobOptions }));
  await Promise.all(queues.map((q) => q.waitUntilReady()));
  process.send({ type: 'ready' });
}

function publish(i, due) {
  const f = cfg.flows[i];
  const seq = f.track ? ++seqCounter : 0;
  const now = Date.now();
  lags.push(now - due);
  inflight++;
  queues[i].add('j', { s: seq }).then(
    () => {
      inflight--;
      if (stopping) return;
      published++;
      const at = now - cfg.epoch;
      const b = Math.floor(at / cfg.bucketMs);
      if (b >= 0 && b < nb) pub[i * nb + b]++;
      if (seq > 0) tracked.push([seq, f.idx, at]);
    },
    (err) => {
      inflight--;
      if (stopping) return;
      if (failed++ === 0) firstErr = String(err && err.message ? err.message : err);
    },
  );
}

function run(start, end) {
  const flows = cfg.flows;
  const k = new Float64Array(flows.length);
  const next = flows.map((f) => (f.rate > 0 ? start + f.phase : Infinity));
  return new Promise((resolve) => {
    finished = resolve;
    const tick = () => {
      if (ended) return;
      const now = Date.now();
      let soonest = Infinity;
      for (let i = 0; i < flows.length; i++) {
        while (next[i] <= now && next[i] < end && inflight < maxInflight) {
          publish(i, next[i]);
          k[i]++;
          next[i] = start + flows[i].phase + (k[i] * 1000) / flows[i].rate;
        }
        if (next[i] < end) soonest = Math.min(soonest, next[i]);
      }
      if (soonest === Infinity) {
        finish();
        return;
      }
      setTimeout(tick, Math.max(0, Math.min(soonest - Date.now(), 50)));
    };
    setTimeout(tick, Math.max(0, start - Date.now()));
  });
}

// finish waits up to a second for adds still in flight (the Go bench's
// lateGrace), counts what is left as late and reports.
async function finish() {
  if (ended) return;
  ended = true;
  const deadline = Date.now() + 1000;
  while (inflight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  late = inflight;
  stopping = true;
  const sorted = Float64Array.from(lags).sort();
  const at = (q) => (sorted.length ? sorted[Math.max(0, Math.min(Math.ceil(q * sorted.length) - 1, sorted.length - 1))] : 0);
  const out = {
    bucket_ms: cfg.bucketMs,
    nb,
    flows: cfg.flows.map((f) => f.idx),
    published: Array.from(pub),
    tracked,
    generator: { published, failed, late, lag_p99_ms: at(0.99), lag_max_ms: sorted.length ? sorted[sorted.length - 1] : 0, first_error: firstErr },
  };
  writeFileSync(cfg.statsPath, JSON.stringify(out));
  process.send({ type: 'done' });
  if (finished) finished();
}

process.on('message', (m) => {
  if (m.type === 'prepare') {
    prepare(m.cfg).catch((err) => {
      process.send({ type: 'error', error: String(err && err.stack ? err.stack : err) });
      process.exit(1);
    });
  } else if (m.type === 'go') {
    cfg.epoch = m.epoch ?? m.start; // buckets and publish times count from here
    run(m.start, m.end);
  } else if (m.type === 'stop') {
    finish();
  }
});
process.on('disconnect', () => process.exit(0));
