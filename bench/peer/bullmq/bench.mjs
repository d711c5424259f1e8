// Peer benchmark: BullMQ on Redis against orgdispatch's platform simulator,
// in the scale and isolation scenarios of `orgdispatch bench`
// (internal/bench/scale.go, isolation.go). Run it through run.sh, which
// installs redis-server and the npm packages and builds the orgdispatch
// binary; see README.md. Everything listens on 127.0.0.1.
//
// Counts come from the simulator's own request log (orgdispatch sim
// --log-requests: one line per answered request, with its path, client and
// status, stamped when the answer was written, i.e. after --latency). Every
// job's campaign id names its tenant and job, as in orgdispatch's bench; a
// request's arrival is taken as its logged time minus the latency. The
// workers count what they got too; that is reported as a cross-check.

import { fork, spawn, execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import IORedis from 'ioredis';
import { clientID, clientSecret, cpuSeconds, goDuration, memStatus, parseDuration, round, spread, summarize, tenantID } from './lib.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const sleep = (ms) => new Promise((r) => setTimeout(r, Math.max(0, ms)));
const log = (...a) => console.error('[bullmq-peer]', ...a);

const USAGE = `Usage: run.sh scale|isolation [flags]

scale: N tenants, each offering R jobs/s at the real quota (300 per 60 s per
token), one BullMQ queue and Worker per tenant in one Node process.
  --tenants N            [1000]
  --rate R               jobs/s offered per tenant [5]
  --duration D           measuring window, whole seconds [60s]
  --limit L --window W   simulator quota per token, also the Worker limiter [300, 60s]
  --startup-timeout D    wait for every tenant's first request [60s]

isolation: tenant 0 offers 10×Q, the other 9 offer 0.8×Q (Q = 100 per 10 s
per OAuth client, time-compressed as in orgdispatch's isolation scenario),
then the same without the noisy tenant as the latency reference.
  --tenants N            [10]
  --duration D           [30s], plus --grace [2s] for latency only
  --limit L --window W   [100, 10s]
  --noisy F --quiet F    offered load as multiples of Q [10, 0.8]
  --no-reference         skip the run without the noisy tenant

both:
  --concurrency C        per Worker [4]
  --latency D            simulator latency [50ms]
  --aof                  Redis with appendonly yes, appendfsync everysec
                         (default: no persistence at all)
  --worker-procs P       spread the Workers over P Node processes [1]
  --connection MODE      shared: one Redis connection for all Workers'
                         regular commands (plus each Worker's own blocking
                         one); per-worker: two per Worker [shared]
  --json FILE            also write the JSON result to FILE
  --keep                 keep the run directory (logs, stats files)
  --bin PATH             orgdispatch binary [$ORGDISPATCH_BIN]

The JSON result goes to stdout; progress and the table to stderr.
`;

function parseArgs(argv) {
  const scenario = argv[0];
  if (scenario !== 'scale' && scenario !== 'isolation') {
    process.stderr.write(USAGE);
    process.exit(scenario === '-h' || scenario === '--help' ? 0 : 2);
  }
  const o = {
    scenario,
    tenants: scenario === 'scale' ? 1000 : 10,
    rate: 5,
    durationMs: scenario === 'scale' ? 60000 : 30000,
    limit: scenario === 'scale' ? 300 : 100,
    windowMs: scenario === 'scale' ? 60000 : 10000,
    startupTimeoutMs: 60000,
    noisy: 10,
    quiet: 0.8,
    graceMs: 2000,
    reference: true,
    concurrency: 4,
    latencyMs: 50,
    aof: false,
    workerProcs: 1,
    connection: 'shared',
    json: '',
    keep: false,
    bin: process.env.ORGDISPATCH_BIN || '',
  };
  const num = (v, name) => {
    const x = Number(v);
    if (!Number.isFinite(x) || x <= 0) throw new Error(`--${name}: want a positive number, got ${JSON.stringify(v)}`);
    return x;
  };
  const flags = {
    tenants: (v) => (o.tenants = Math.round(num(v, 'tenants'))),
    rate: (v) => (o.rate = num(v, 'rate')),
    duration: (v) => (o.durationMs = parseDuration(v)),
    limit: (v) => (o.limit = Math.round(num(v, 'limit'))),
    window: (v) => (o.windowMs = parseDuration(v)),
    'startup-timeout': (v) => (o.startupTimeoutMs = parseDuration(v)),
    noisy: (v) => (o.noisy = num(v, 'noisy')),
    quiet: (v) => (o.quiet = num(v, 'quiet')),
    grace: (v) => (o.graceMs = parseDuration(v)),
    concurrency: (v) => (o.concurrency = Math.round(num(v, 'concurrency'))),
    latency: (v) => (o.latencyMs = parseDuration(v)),
    'worker-procs': (v) => (o.workerProcs = Math.round(num(v, 'worker-procs'))),
    connection: (v) => {
      if (v !== 'shared' && v !== 'per-worker') throw new Error('--connection: shared or per-worker');
      o.connection = v;
    },
    json: (v) => (o.json = v),
    bin: (v) => (o.bin = v),
  };
  const bools = { aof: () => (o.aof = true), keep: () => (o.keep = true), 'no-reference': () => (o.reference = false) };
  for (let i = 1; i < argv.length; i++) {
    let a = argv[i];
    if (a === '-h' || a === '--help') {
      process.stderr.write(USAGE);
      process.exit(0);
    }
    if (!a.startsWith('--')) throw new Error(`unexpected argument ${JSON.stringify(a)}`);
    a = a.slice(2);
    let v;
    const eq = a.indexOf('=');
    if (eq >= 0) [a, v] = [a.slice(0, eq), a.slice(eq + 1)];
    if (bools[a]) {
      bools[a]();
      continue;
    }
    if (!flags[a]) throw new Error(`unknown flag --${a}\n\n${USAGE}`);
    if (v === undefined) {
      if (i + 1 >= argv.length) throw new Error(`--${a} needs a value`);
      v = argv[++i];
    }
    flags[a](v);
  }
  if (!o.bin) throw new Error('no orgdispatch binary: use run.sh, or pass --bin');
  if (o.scenario === 'scale') o.durationMs = Math.max(1000, Math.round(o.durationMs / 1000) * 1000);
  if (o.scenario === 'isolation') o.tenants = Math.max(o.tenants, 2);
  return o;
}

// ---- processes -------------------------------------------------------------

const children = new Set(); // pids this run started

function cleanup() {
  for (const pid of children) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {}
  }
  children.clear();
}
process.on('exit', cleanup);
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    cleanup();
    process.exit(130);
  });
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function exited(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
}

async function stopChild(child, signal = 'SIGTERM', timeoutMs = 5000) {
  if (child.exitCode === null && child.signalCode === null) {
    try {
      child.kill(signal);
    } catch {}
    const t = setTimeout(() => {
      try {
        child.kill('SIGKILL');
      } catch {}
    }, timeoutMs);
    await exited(child);
    clearTimeout(t);
  }
  children.delete(child.pid);
}

async function startRedis(dir, aof) {
  const port = await freePort();
  const logPath = path.join(dir, 'redis.log');
  const fd = openSync(logPath, 'a');
  const args = [
    '--bind', '127.0.0.1', '--port', String(port), '--protected-mode', 'yes', '--daemonize', 'no',
    '--dir', dir, '--save', '', '--appendonly', aof ? 'yes' : 'no', '--appendfsync', 'everysec',
    '--maxclients', '10000', '--maxmemory-policy', 'noeviction',
  ];
  const child = spawn('redis-server', args, { stdio: ['ignore', fd, fd] });
  closeSync(fd);
  children.add(child.pid);
  const deadline = Date.now() + 15000;
  let client;
  for (;;) {
    client = new IORedis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
    client.on('error', () => {});
    try {
      await client.connect();
      await client.ping();
      break;
    } catch (err) {
      client.disconnect();
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`redis-server did not start: ${err.message} (see ${logPath})`);
      await sleep(100);
    }
  }
  const version = (await client.info('server')).match(/redis_version:(\S+)/)?.[1];
  return { port, child, client, version, logPath };
}

// SimLog reads the simulator's request log as it grows and attributes each
// campaign request to its tenant (by the campaign id's first field) and job
// (by its last), in time buckets since epoch, by arrival (logged answer
// time minus latency).
class SimLog {
  constructor(file, { epoch, bucketMs, spanMs, tenants, latencyMs, trackJobs }) {
    this.file = file;
    this.offset = 0;
    this.rest = '';
    this.epoch = epoch;
    this.bucketMs = bucketMs;
    this.nb = Math.ceil(spanMs / bucketMs) + 1;
    this.tenants = tenants;
    this.latencyMs = latencyMs;
    this.ok = new Int32Array(tenants * this.nb);
    this.limited = new Int32Array(tenants * this.nb);
    this.other = new Int32Array(tenants * this.nb);
    this.first = new Float64Array(tenants).fill(-1); // arrival of the first API request, ms since epoch
    this.firstCount = 0;
    this.tokens = 0;
    this.tokenErrors = 0;
    // abandoned: status 0, the caller went away before the answer (requests
    // in flight when the workers are stopped at the end).
    this.totals = { ok: 0, limited: 0, other: 0, abandoned: 0, foreign: 0 };
    this.calledAt = trackJobs ? new Map() : null; // seq -> first 2xx arrival
    this.lines = 0;
  }

  poll() {
    let fd;
    try {
      fd = openSync(this.file, 'r');
    } catch {
      return;
    }
    try {
      const size = statSync(this.file).size;
      const chunk = Buffer.allocUnsafe(4 << 20);
      while (this.offset < size) {
        const n = readSync(fd, chunk, 0, Math.min(chunk.length, size - this.offset), this.offset);
        if (n <= 0) break;
        this.offset += n;
        const text = this.rest + chunk.toString('utf8', 0, n);
        const lines = text.split('\n');
        this.rest = lines.pop();
        for (const l of lines) this.line(l);
      }
    } finally {
      closeSync(fd);
    }
  }

  line(l) {
    if (!l.startsWith('time=') || !l.includes(' msg=request ')) return;
    this.lines++;
    const sp = l.indexOf(' ');
    const answered = Date.parse(l.slice(5, sp));
    const status = parseInt(l.slice(l.lastIndexOf(' status=') + 8), 10);
    const P = ' path=/api/v2/outbound/campaigns/';
    const pi = l.indexOf(P);
    if (pi < 0) {
      if (l.includes(' path=/oauth/token ')) {
        if (status === 200) this.tokens++;
        else this.tokenErrors++;
      } else if (l.includes(' path=/api/')) {
        this.totals.foreign++;
      }
      return;
    }
    const id = l.substr(pi + P.length, 36);
    const tenant = parseInt(id.slice(0, 8), 16);
    const seq = parseInt(id.slice(24, 36), 16);
    if (!(tenant >= 0 && tenant < this.tenants)) {
      this.totals.foreign++;
      return;
    }
    const at = answered - this.latencyMs - this.epoch;
    if (this.first[tenant] < 0) {
      this.first[tenant] = at;
      this.firstCount++;
    }
    const b = Math.floor(at / this.bucketMs);
    const i = b >= 0 && b < this.nb ? tenant * this.nb + b : -1;
    if (status >= 200 && status < 300) {
      this.totals.ok++;
      if (i >= 0) this.ok[i]++;
      if (this.calledAt && seq > 0 && !this.calledAt.has(seq)) this.calledAt.set(seq, at);
    } else if (status === 429) {
      this.totals.limited++;
      if (i >= 0) this.limited[i]++;
    } else if (status === 0) {
      this.totals.abandoned++;
    } else {
      this.totals.other++;
      if (i >= 0) this.other[i]++;
    }
  }
}

// count sums a tenant's buckets over [a, b) ms since epoch.
function count(arr, nb, bucketMs, tenant, a, b) {
  const from = Math.max(0, Math.floor(a / bucketMs));
  const to = Math.min(nb, Math.ceil(b / bucketMs));
  let n = 0;
  for (let i = from; i < to; i++) n += arr[tenant * nb + i];
  return n;
}

async function startSim(o, dir, ids, { limit, windowMs, scope }) {
  const clients = ids.map((id) => `${clientID(id)}:${clientSecret(id)}:${id}`).join(',');
  if (clients.length > 120000) {
    throw new Error(`${ids.length} tenants: orgdispatch sim takes its clients in one command-line argument, and ${clients.length} bytes exceed Linux's 128 KiB limit for one argument`);
  }
  const logPath = path.join(dir, 'sim.log');
  const fd = openSync(logPath, 'w');
  const args = ['sim', '--addr', '127.0.0.1:0', '--clients', clients, '--limit', String(limit), '--window', goDuration(windowMs),
    '--scope', scope, '--latency', goDuration(o.latencyMs), '--log-requests'];
  const child = spawn(o.bin, args, { stdio: ['ignore', 'ignore', fd] });
  closeSync(fd);
  children.add(child.pid);
  const deadline = Date.now() + 20000;
  for (;;) {
    const text = readFileSync(logPath, 'utf8');
    const m = text.match(/ url=(http:\/\/127\.0\.0\.1:\d+)/);
    if (m) return { url: m[1], child, logPath };
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`simulator did not start:\n${text.slice(0, 2000)}`);
    await sleep(50);
  }
}

function forkNode(script) {
  const child = fork(path.join(HERE, script), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [] });
  children.add(child.pid);
  return child;
}

function waitMsg(child, type, timeoutMs, what) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => done(new Error(`${what}: no "${type}" within ${timeoutMs} ms`)), timeoutMs);
    const onMsg = (m) => {
      if (m.type === type) done(null, m);
      else if (m.type === 'error') done(new Error(`${what}: ${m.error}`));
    };
    const onExit = (code) => done(new Error(`${what} exited (code ${code}) before "${type}"`));
    function done(err, m) {
      clearTimeout(t);
      child.off('message', onMsg);
      child.off('exit', onExit);
      err ? reject(err) : resolve(m);
    }
    child.on('message', onMsg);
    child.on('exit', onExit);
  });
}

function readJSON(p) {
  return JSON.parse(readFileSync(p, 'utf8'));
}

// Stack is one run of the peer: redis-server, the simulator, the producer
// and the worker processes.
class Stack {
  constructor(o, dir, name) {
    this.o = o;
    this.dir = dir;
    this.name = name;
  }

  async start({ ids, limit, windowMs, scope, flows, bucketMs, spanMs, jobOptions }) {
    const o = this.o;
    this.ids = ids;
    this.redis = await startRedis(this.dir, o.aof);
    this.sim = await startSim(o, this.dir, ids, { limit, windowMs, scope });
    this.producer = forkNode('producer.mjs');
    this.producerStats = path.join(this.dir, `${this.name}-producer.json`);
    this.producer.send({ type: 'prepare', cfg: { redisPort: this.redis.port, flows, bucketMs, spanMs, jobOptions, statsPath: this.producerStats } });
    await waitMsg(this.producer, 'ready', 120000, 'producer');
    this.workerCfg = { redisPort: this.redis.port, simURL: this.sim.url, concurrency: o.concurrency, limiterMax: limit, limiterDuration: windowMs, bucketMs, spanMs, connection: o.connection };
  }

  // startWorkers forks the worker processes; epoch is set now, so call it
  // at the moment the clock starts. Resolves when every Worker is ready.
  forkWorkers(epoch) {
    const o = this.o;
    this.workers = [];
    const ready = [];
    for (let p = 0; p < o.workerProcs; p++) {
      const tenants = this.ids.map((id, idx) => ({ id, idx })).filter((t) => t.idx % o.workerProcs === p);
      const child = forkNode('worker.mjs');
      child.send({ type: 'start', cfg: { ...this.workerCfg, epoch, tenants } });
      this.workers.push(child);
      ready.push(waitMsg(child, 'ready', o.startupTimeoutMs + 60000, `worker process ${p}`));
    }
    return Promise.all(ready);
  }

  pids() {
    return { worker: this.workers.map((w) => w.pid), redis: [this.redis.child.pid], simulator: [this.sim.child.pid], producer: [this.producer.pid] };
  }

  cpu() {
    const out = { at: Date.now(), self: process.cpuUsage() };
    for (const [k, pids] of Object.entries(this.pids())) out[k] = pids.reduce((s, pid) => s + cpuSeconds(pid), 0);
    return out;
  }

  async redisInfo() {
    const mem = await this.redis.client.info('memory');
    const stats = await this.redis.client.info('stats');
    const clients = await this.redis.client.info('clients');
    const g = (s, k) => Number(s.match(new RegExp(`^${k}:(\\S+)`, 'm'))?.[1]);
    return { used_memory_mb: g(mem, 'used_memory') / 2 ** 20, used_memory_rss_mb: g(mem, 'used_memory_rss') / 2 ** 20, commands: g(stats, 'total_commands_processed'), connected_clients: g(clients, 'connected_clients') };
  }

  async stopProducer() {
    const done = waitMsg(this.producer, 'done', 10000, 'producer');
    this.producer.send({ type: 'stop' });
    await done;
    await stopChild(this.producer);
    return readJSON(this.producerStats);
  }

  async stopWorkers() {
    const stats = [];
    for (let p = 0; p < this.workers.length; p++) {
      const file = path.join(this.dir, `${this.name}-worker-${p}.json`);
      const w = this.workers[p];
      const stopped = waitMsg(w, 'stopped', 30000, `worker process ${p}`);
      w.send({ type: 'stop', path: file });
      await stopped;
      await stopChild(w);
      stats.push(readJSON(file));
    }
    return stats;
  }

  async stop() {
    for (const c of [this.producer, ...(this.workers || [])]) if (c) await stopChild(c, 'SIGKILL');
    if (this.sim) await stopChild(this.sim.child);
    if (this.redis) {
      this.redis.client.disconnect();
      await stopChild(this.redis.child);
    }
  }
}

function cores(c0, c1) {
  const wall = (c1.at - c0.at) / 1000;
  const out = {};
  for (const k of ['worker', 'redis', 'simulator', 'producer']) out[k] = (c1[k] - c0[k]) / wall;
  out.orchestrator = ((c1.self.user - c0.self.user + c1.self.system - c0.self.system) / 1e6) / wall;
  out.total = Object.values(out).reduce((a, b) => a + b, 0);
  for (const k of Object.keys(out)) out[k] = round(out[k], 2);
  return out;
}

// workerSide merges the worker processes' own counts into per-tenant
// arrays indexed like the simulator's.
function workerSide(stats, n) {
  const nb = stats[0].nb;
  const ok = new Int32Array(n * nb);
  const limited = new Int32Array(n * nb);
  const calledAt = new Map();
  const first = new Float64Array(n).fill(-1);
  let tokens = 0;
  const errors = { worker: 0, job: 0, token: 0, first: [] };
  for (const s of stats) {
    s.tenants.forEach((t, li) => {
      for (let b = 0; b < nb; b++) {
        ok[t * nb + b] += s.ok[li * nb + b];
        limited[t * nb + b] += s.limited[li * nb + b];
      }
      first[t] = s.first_request_ms[li];
    });
    for (const [seq, at] of s.called_at) calledAt.set(seq, at);
    tokens += s.tokens_issued;
    for (const k of ['worker', 'job', 'token']) errors[k] += s.errors[k];
    errors.first.push(...s.errors.first);
  }
  errors.first = errors.first.slice(0, 5);
  return { nb, bucketMs: stats[0].bucket_ms, ok, limited, calledAt, first, tokens, errors };
}

function table(title, head, rows) {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (r) => r.map((c, i) => String(c).padEnd(w[i])).join('  ');
  return [`${title}`, line(head), w.map((x) => '-'.repeat(x)).join('  '), ...rows.map(line), ''].join('\n');
}

const f3 = (v) => (v == null || Number.isNaN(v) ? '—' : v.toFixed(3));
const fms = (v) => (v == null ? 'unserved' : `${v.toFixed(1)} ms`);

function versions() {
  const pkg = (name) => readJSON(path.join(HERE, 'node_modules', name, 'package.json')).version;
  return { bullmq: pkg('bullmq'), ioredis: pkg('ioredis'), node: process.version };
}

// ---- scale -----------------------------------------------------------------

async function runScale(o, dir) {
  const n = o.tenants;
  const ids = Array.from({ length: n }, (_, i) => tenantID(i, n));
  const bucketMs = 1000;
  const spanMs = o.startupTimeoutMs + o.durationMs + 15000;
  const flows = ids.map((id, i) => ({ id, idx: i, rate: o.rate, phase: (i / n / o.rate) * 1000, track: false }));
  // The epoch (t0) is set when the workers start; the producer is told it
  // with its start signal.
  const stack = new Stack(o, dir, 'scale');
  const jobOptions = { removeOnComplete: true, removeOnFail: 1000, attempts: 10, backoff: { type: 'exponential', delay: 1000 } };
  try {
    log(`scale: ${n} tenants × ${o.rate} jobs/s, quota ${o.limit} per ${o.windowMs / 1000} s per token, latency ${o.latencyMs} ms, ${o.durationMs / 1000} s window, Redis ${o.aof ? 'AOF everysec' : 'no persistence'}`);
    await stack.start({ ids, limit: o.limit, windowMs: o.windowMs, scope: 'token', flows, bucketMs, spanMs, jobOptions });
    log(`redis ${stack.redis.version} on port ${stack.redis.port}, simulator ${stack.sim.url}; starting ${n} Workers in ${o.workerProcs} process(es)`);
    // t0: the Worker processes are forked (Node start-up, loading BullMQ and
    // creating the Workers all count, as provisioning and worker start do
    // in orgdispatch's figure) and the load starts.
    const t0 = Date.now();
    stack.producer.send({ type: 'go', start: t0, end: t0 + o.startupTimeoutMs + o.durationMs + 5000, epoch: t0 });
    const ready = stack.forkWorkers(t0).then((ms) => Math.max(...ms.map((m) => m.at)) - t0);
    const sim = new SimLog(stack.sim.logPath, { epoch: t0, bucketMs, spanMs, tenants: n, latencyMs: o.latencyMs, trackJobs: false });
    let readyMs = null;
    let readyErr = null;
    ready.then((v) => (readyMs = v), (err) => (readyErr = err));
    while (sim.firstCount < n) {
      if (readyErr) throw readyErr;
      if (Date.now() - t0 > o.startupTimeoutMs) throw new Error(`only ${sim.firstCount} of ${n} tenants made a request within ${o.startupTimeoutMs / 1000} s`);
      await sleep(100);
      sim.poll();
    }
    await ready;
    const startupMs = Math.max(...sim.first);
    log(`every tenant's first request reached the simulator ${(startupMs / 1000).toFixed(2)} s after start (Workers ready at ${(readyMs / 1000).toFixed(2)} s)`);
    const w0 = (Math.floor((Date.now() - t0) / bucketMs) + 1) * bucketMs;
    const w1 = w0 + o.durationMs;
    await sleep(t0 + w0 - Date.now());
    const c0 = stack.cpu();
    const r0 = await stack.redisInfo();
    log(`measuring ${o.durationMs / 1000} s …`);
    await sleep(t0 + w1 - Date.now());
    const c1 = stack.cpu();
    const r1 = await stack.redisInfo();
    const mem = {};
    for (const [k, pids] of Object.entries(stack.pids())) {
      const ms = pids.map(memStatus);
      mem[k] = { rss_mb: round(ms.reduce((s, m) => s + m.rssMB, 0), 1), peak_mb: round(ms.reduce((s, m) => s + m.hwmMB, 0), 1) };
    }
    const prod = await stack.stopProducer();
    const wstats = await stack.stopWorkers();
    await stack.stop();
    sim.poll();

    const ws = workerSide(wstats, n);
    const d = o.durationMs / 1000;
    const rates = [];
    const wrates = [];
    let limited = 0;
    let wlimited = 0;
    let pubTotal = 0;
    for (let t = 0; t < n; t++) {
      rates.push(count(sim.ok, sim.nb, bucketMs, t, w0, w1) / d / o.rate);
      wrates.push(count(ws.ok, ws.nb, bucketMs, t, w0, w1) / d / o.rate);
      limited += count(sim.limited, sim.nb, bucketMs, t, w0, w1);
      wlimited += count(ws.limited, ws.nb, bucketMs, t, w0, w1);
      pubTotal += count(prod.published, prod.nb, bucketMs, t, w0, w1);
    }
    const sp = spread(rates);
    const wsp = spread(wrates);
    const heapMB = wstats.reduce((s, w) => s + w.memory.heap_used_mb, 0);
    const cpu = cores(c0, c1);
    const figures = {
      tenants: n,
      rate_min: round(sp.min),
      rate_median: round(sp.median),
      rate_max: round(sp.max),
      tenants_within_3pct: rates.filter((r) => Math.abs(r - 1) <= 0.03).length,
      tenants_within_3pct_of_median: rates.filter((r) => Math.abs(r - sp.median) <= 0.03 * sp.median).length,
      published_over_offered: round(pubTotal / (n * o.rate * d)),
      rate_limited: limited,
      startup_sec: round(startupMs / 1000, 2),
      workers_ready_sec: round(readyMs / 1000, 2),
      worker_rss_mb: mem.worker.rss_mb,
      worker_rss_peak_mb: mem.worker.peak_mb,
      worker_heap_used_mb: round(heapMB, 1),
      worker_heap_per_tenant_kb: round((heapMB * 1024) / n, 1),
      redis_rss_mb: mem.redis.rss_mb,
      redis_rss_peak_mb: mem.redis.peak_mb,
      redis_used_memory_mb: round(r1.used_memory_mb, 1),
      redis_commands_per_sec: round((r1.commands - r0.commands) / ((c1.at - c0.at) / 1000), 0),
      redis_connected_clients: r1.connected_clients,
      simulator_rss_mb: mem.simulator.rss_mb,
      producer_rss_mb: mem.producer.rss_mb,
      cores: cpu,
      tokens_issued: sim.tokens,
      token_errors: sim.tokenErrors,
      simulator_totals: sim.totals,
      generator: prod.generator,
      worker_side: { rate_min: round(wsp.min), rate_median: round(wsp.median), rate_max: round(wsp.max), rate_limited: wlimited, tokens_issued: ws.tokens, errors: ws.errors },
    };
    const settings = {
      tenants: n, jobs_per_sec_per_tenant: o.rate, quota: `${o.limit} per ${o.windowMs / 1000} s per token (simulator, scope token)`,
      worker_limiter: { max: o.limit, duration: o.windowMs }, concurrency: o.concurrency, latency_ms: o.latencyMs, duration_sec: d,
      window_start_sec: w0 / 1000, redis_persistence: o.aof ? 'aof everysec' : 'none', worker_procs: o.workerProcs, connection: o.connection,
      job: 'GET /api/v2/outbound/campaigns/{tenant’s shared campaign} (campaign.get, as orgdispatch bench scale)', job_options: jobOptions,
      counted_at: 'simulator request log (arrival ≈ logged answer time − latency); worker_side: the workers’ own counts by send time',
      start_up: 'from forking the worker process(es) (the load starts then too) to every tenant’s first request at the simulator',
    };
    const human = [
      table(`BullMQ peer, scale: per-tenant achieved rate ÷ offered over ${d} s (simulator-side)`,
        ['tenants', 'published÷offered', 'min', 'median', 'max', 'within ±3 % of offered', 'within ±3 % of median', '429s'],
        [[n, f3(figures.published_over_offered), f3(sp.min), f3(sp.median), f3(sp.max), `${figures.tenants_within_3pct}/${n}`, `${figures.tenants_within_3pct_of_median}/${n}`, limited]]),
      table('start-up and resources (over the window; RSS at its end)',
        ['first request of every tenant', 'Workers ready', 'worker RSS (peak)', 'worker heap/tenant', 'redis RSS', 'cores: worker', 'redis', 'simulator', 'producer', 'total'],
        [[`${figures.startup_sec.toFixed(2)} s`, `${figures.workers_ready_sec.toFixed(2)} s`, `${mem.worker.rss_mb.toFixed(0)} MB (${mem.worker.peak_mb.toFixed(0)})`, `${figures.worker_heap_per_tenant_kb} KB`,
          `${mem.redis.rss_mb.toFixed(0)} MB`, cpu.worker.toFixed(2), cpu.redis.toFixed(2), cpu.simulator.toFixed(2), cpu.producer.toFixed(2), cpu.total.toFixed(2)]]),
      `cross-check, the workers' own counts: median ${f3(wsp.median)} (min ${f3(wsp.min)}, max ${f3(wsp.max)}), ${wlimited} 429s; tokens issued ${sim.tokens} for ${n} tenants; redis ${round(figures.redis_commands_per_sec, 0)} commands/s; generator lag p99 ${prod.generator.lag_p99_ms} ms, late ${prod.generator.late}, failed ${prod.generator.failed}`,
      ws.errors.first.length ? `worker errors: ${JSON.stringify(ws.errors)}` : '',
    ].join('\n');
    return { result: { scenario: 'scale', peer: { ...versions(), redis: stack.redis.version }, settings, figures }, human };
  } finally {
    await stack.stop();
  }
}

// ---- isolation ---------------------------------------------------------------

async function runIsolationMode(o, dir, mode, noisyFactor) {
  const n = o.tenants;
  const ids = Array.from({ length: n }, (_, i) => tenantID(i, n));
  const q = o.limit / (o.windowMs / 1000);
  const bucketMs = 100;
  const runMs = o.durationMs + o.graceMs;
  const spanMs = runMs + 5000;
  const flows = ids.map((id, i) => ({ id, idx: i, rate: (i === 0 ? noisyFactor : o.quiet) * q, phase: (i / n / (o.quiet * q)) * 1000, track: true }));
  const stack = new Stack(o, dir, mode === 'bullmq' ? 'isolation' : 'isolation-reference');
  const jobOptions = { removeOnComplete: true, removeOnFail: 1000, attempts: 10, backoff: { type: 'exponential', delay: 1000 } };
  try {
    await stack.start({ ids, limit: o.limit, windowMs: o.windowMs, scope: 'client', flows, bucketMs, spanMs, jobOptions });
    // As orgdispatch's isolation scenario: the load starts once every
    // consumer is ready, 100 ms later, and the epoch is the load's start.
    const pre = Date.now();
    await stack.forkWorkers(pre);
    const start = Date.now() + 100;
    // The workers' buckets count from pre; shift them to start below.
    const shift = start - pre;
    const sim = new SimLog(stack.sim.logPath, { epoch: start, bucketMs, spanMs, tenants: n, latencyMs: o.latencyMs, trackJobs: true });
    const done = waitMsg(stack.producer, 'done', runMs + 15000, 'producer');
    stack.producer.send({ type: 'go', start, end: start + runMs });
    const c0 = stack.cpu();
    await done;
    const c1 = stack.cpu();
    const prod = readJSON(stack.producerStats);
    const wstats = await stack.stopWorkers();
    await stack.stop();
    sim.poll();
    const ws = workerSide(wstats, n);

    const d = o.durationMs;
    const pubAt = new Map();
    for (const [seq, t, at] of prod.tracked) pubAt.set(seq, { t, at });
    const lat = Array.from({ length: n }, () => ({ served: [], unserved: 0, wserved: [], wunserved: 0 }));
    for (const [seq, { t, at: rel }] of pubAt) {
      // rel: publish time, ms since start (the producer's epoch).
      if (rel < 0 || rel >= d) continue;
      const c = sim.calledAt.get(seq);
      if (c === undefined) lat[t].unserved++;
      else lat[t].served.push(c - rel);
      const wc = ws.calledAt.get(seq);
      if (wc === undefined) lat[t].wunserved++;
      else lat[t].wserved.push(wc - shift - rel);
    }
    const tenants = [];
    let quietMin = Infinity;
    let wquietMin = Infinity;
    let total429 = 0;
    const quietLat = [];
    const wquietLat = [];
    let quietUnserved = 0;
    let wquietUnserved = 0;
    for (let t = 0; t < n; t++) {
      const off = count(prod.published, prod.nb, bucketMs, t, 0, d) / (d / 1000);
      const good = count(sim.ok, sim.nb, bucketMs, t, 0, d) / (d / 1000);
      const wgood = count(ws.ok, ws.nb, bucketMs, t, shift, shift + d) / (d / 1000);
      const r429 = count(sim.limited, sim.nb, bucketMs, t, 0, d);
      total429 += r429;
      const tf = {
        tenant: ids[t], noisy: t === 0 && mode === 'bullmq', offered_per_sec: round(off, 2), goodput_per_sec: round(good, 2),
        goodput_over_offered: round(off ? good / off : 0), goodput_over_q: round(good / q), rate_limited: r429,
        queue_to_call: summarize(lat[t].served, lat[t].unserved),
        worker_side: { goodput_over_offered: round(off ? wgood / off : 0), rate_limited: count(ws.limited, ws.nb, bucketMs, t, shift, shift + d) },
      };
      for (const k of ['p50_ms', 'p99_ms', 'max_ms']) tf.queue_to_call[k] = round(tf.queue_to_call[k], 1);
      if (t > 0) {
        quietMin = Math.min(quietMin, tf.goodput_over_offered);
        wquietMin = Math.min(wquietMin, tf.worker_side.goodput_over_offered);
        quietLat.push(...lat[t].served);
        wquietLat.push(...lat[t].wserved);
        quietUnserved += lat[t].unserved;
        wquietUnserved += lat[t].wunserved;
      }
      tenants.push(tf);
    }
    return {
      mode,
      tenants,
      quiet_min_goodput_over_offered: quietMin,
      quiet_pooled_p99_ms: round(summarize(quietLat, quietUnserved).p99_ms, 1),
      noisy_goodput_over_q: tenants[0].goodput_over_q,
      noisy_rate_limited: tenants[0].rate_limited,
      total_429: total429,
      generator: prod.generator,
      cores: cores(c0, c1),
      tokens_issued: sim.tokens,
      simulator_totals: sim.totals,
      worker_side: { quiet_min_goodput_over_offered: wquietMin, quiet_pooled_p99_ms: round(summarize(wquietLat, wquietUnserved).p99_ms, 1), errors: ws.errors },
    };
  } finally {
    await stack.stop();
  }
}

async function runIsolation(o, dir) {
  const q = o.limit / (o.windowMs / 1000);
  log(`isolation: ${o.tenants} tenants, Q = ${o.limit} per ${o.windowMs / 1000} s per OAuth client (${q.toFixed(1)}/s); org 0 offers ${o.noisy}×Q, the others ${o.quiet}×Q; ${o.durationMs / 1000} s + ${o.graceMs / 1000} s grace; Redis ${o.aof ? 'AOF everysec' : 'no persistence'}`);
  const modes = [];
  log('mode bullmq (noisy tenant at ' + o.noisy + '×Q) …');
  modes.push(await runIsolationMode(o, dir, 'bullmq', o.noisy));
  if (o.reference) {
    log('mode reference (no noisy tenant) …');
    modes.push(await runIsolationMode(o, dir, 'bullmq, no noisy org (reference)', o.quiet));
  }
  const settings = {
    tenants: o.tenants, q_per_sec: q, quota: `${o.limit} per ${o.windowMs / 1000} s per OAuth client (simulator, scope client)`,
    worker_limiter: { max: o.limit, duration: o.windowMs }, noisy_factor: o.noisy, quiet_factor: o.quiet, concurrency: o.concurrency,
    latency_ms: o.latencyMs, duration_sec: o.durationMs / 1000, grace_sec: o.graceMs / 1000, redis_persistence: o.aof ? 'aof everysec' : 'none',
    worker_procs: o.workerProcs, connection: o.connection, job: 'GET /api/v2/outbound/campaigns/{per-job campaign} (campaign.get, as orgdispatch bench isolation)',
    counted_at: 'simulator request log (arrival ≈ logged answer time − latency); queue_to_call = publish (Queue.add started) → arrival of the job’s first 2xx call',
  };
  const rows = modes.map((m) => [m.mode, f3(m.quiet_min_goodput_over_offered), fms(m.quiet_pooled_p99_ms), m.mode === 'bullmq' ? f3(m.noisy_goodput_over_q) : '—',
    m.mode === 'bullmq' ? m.noisy_rate_limited : '—', m.total_429, `${m.generator.lag_p99_ms} / ${m.generator.lag_max_ms} ms`]);
  const parts = [table(`BullMQ peer, isolation (simulator-side, over ${o.durationMs / 1000} s)`, ['mode', 'quiet min goodput÷offered', 'quiet p99 (pooled)', 'noisy goodput÷Q', 'noisy 429s', 'all 429s', 'generator lag p99/max'], rows)];
  for (const m of modes) {
    parts.push(table(`mode: ${m.mode}`, ['tenant', 'offered/s', 'goodput/s', 'goodput÷offered', 'goodput÷Q', '429s', 'p50', 'p99', 'served/jobs'],
      m.tenants.map((t) => [t.tenant + (t.noisy ? ' (noisy)' : ''), t.offered_per_sec.toFixed(2), t.goodput_per_sec.toFixed(2), f3(t.goodput_over_offered), f3(t.goodput_over_q), t.rate_limited,
        fms(t.queue_to_call.p50_ms), fms(t.queue_to_call.p99_ms), `${t.queue_to_call.served}/${t.queue_to_call.jobs}`])));
    parts.push(`cross-check (${m.mode}), the workers' own counts: quiet min goodput÷offered ${f3(m.worker_side.quiet_min_goodput_over_offered)}, quiet p99 ${fms(m.worker_side.quiet_pooled_p99_ms)}; cores ${JSON.stringify(m.cores)}${m.worker_side.errors.first.length ? `; worker errors ${JSON.stringify(m.worker_side.errors)}` : ''}\n`);
  }
  return { result: { scenario: 'isolation', peer: versions(), settings, figures: { modes } }, human: parts.join('\n') };
}

// ---- main ------------------------------------------------------------------

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bullmq-peer-'));
  let ok = false;
  try {
    const { result, human } = o.scenario === 'scale' ? await runScale(o, dir) : await runIsolation(o, dir);
    result.machine = { cores: os.cpus().length, load_avg_at_end: os.loadavg().map((x) => round(x, 2)) };
    process.stderr.write('\n' + human + '\n');
    const json = JSON.stringify(result, null, 2);
    process.stdout.write(json + '\n');
    if (o.json) writeFileSync(o.json, json + '\n');
    ok = true;
  } finally {
    if (o.keep || !ok) log(`run directory kept: ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  log('error:', err && err.stack ? err.stack : err);
  cleanup();
  process.exit(1);
});
