// The peer under test: one BullMQ Worker per tenant queue in this Node
// process (bench.mjs forks one or more of these and talks to them over the
// IPC channel). Each job fetches its tenant's own OAuth token from the
// simulator (client credentials, cached per tenant) and makes one platform
// request, a campaign get, as orgdispatch's bench jobs do. A 429 pauses the
// tenant's queue for Retry-After (worker.rateLimit) and puts the job back
// (Worker.RateLimitError), which does not use up an attempt.
//
// It also counts, per tenant and time bucket, the answers it got (by the
// time it sent the request): a cross-check of the simulator's own request
// log, which bench.mjs treats as the measurement.

import http from 'node:http';
import { writeFileSync } from 'node:fs';
import { Worker } from 'bullmq';
import IORedis from 'ioredis';
import { campaignID, campaignPrefix, clientID, clientSecret } from './lib.mjs';

let cfg;
let workers = [];
let local; // global tenant index -> local index
let ok, limited, other; // Int32Array [local*nb + bucket]
let nb;
let firstReq; // per local tenant: ms since epoch of the first API request (send time), -1 none
let calledAt = new Map(); // tracked job seq -> send time of its first 2xx (ms since epoch)
const errors = { worker: 0, job: 0, token: 0, first: [] };
let tokensIssued = 0;
let agent;
let simHost, simPort;

function note(kind, err) {
  errors[kind]++;
  if (errors.first.length < 5) errors.first.push(`${kind}: ${err && err.message ? err.message : err}`);
}

function request(method, path, headers, body, wantBody) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: simHost, port: simPort, method, path, headers, agent }, (res) => {
      if (!wantBody) {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode, headers: res.headers }));
      } else {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      }
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(30000, () => req.destroy(new Error('request timed out after 30 s')));
    req.end(body);
  });
}

// Tokens are cached per tenant; concurrent jobs of a tenant share one
// request, so each tenant uses exactly one token (the simulator's quota is
// per token in the scale scenario).
const tokens = new Map(); // tenant id -> {token, expires} | {pending}

async function fetchToken(tenant) {
  const basic = Buffer.from(`${clientID(tenant)}:${clientSecret(tenant)}`).toString('base64');
  const body = 'grant_type=client_credentials';
  const r = await request('POST', '/oauth/token', {
    Authorization: `Basic ${basic}`,
    'Content-Type': 'application/x-www-form-urlencoded',
    'Content-Length': Buffer.byteLength(body),
  }, body, true);
  if (r.status !== 200) throw new Error(`token for ${tenant}: HTTP ${r.status}`);
  const j = JSON.parse(r.body);
  tokensIssued++;
  return { token: j.access_token, expires: Date.now() + (j.expires_in - 60) * 1000 };
}

async function token(tenant) {
  const e = tokens.get(tenant);
  if (e && e.token && e.expires > Date.now()) return e.token;
  if (e && e.pending) return (await e.pending).token;
  const pending = fetchToken(tenant);
  tokens.set(tenant, { pending });
  try {
    const t = await pending;
    tokens.set(tenant, t);
    return t.token;
  } catch (err) {
    tokens.delete(tenant);
    note('token', err);
    throw err;
  }
}

function record(li, sent, status, seq) {
  const at = sent - cfg.epoch;
  if (firstReq[li] < 0) firstReq[li] = at;
  const b = Math.floor(at / cfg.bucketMs);
  const i = b >= 0 && b < nb ? li * nb + b : -1;
  if (status >= 200 && status < 300) {
    if (i >= 0) ok[i]++;
    if (seq > 0 && !calledAt.has(seq)) calledAt.set(seq, at);
  } else if (status === 429) {
    if (i >= 0) limited[i]++;
  } else if (i >= 0) {
    other[i]++;
  }
}

function makeWorker(t, connection) {
  const li = local.get(t.idx);
  let worker;
  const processor = async (job) => {
    const seq = job.data.s || 0;
    const tok = await token(t.id);
    const sent = Date.now();
    const r = await request('GET', campaignPrefix + campaignID(t.idx, seq), { Authorization: `Bearer ${tok}` }, undefined, false);
    record(li, sent, r.status, seq);
    if (r.status === 429) {
      const retryAfter = parseInt(r.headers['retry-after'], 10) || 1;
      await worker.rateLimit(retryAfter * 1000);
      throw Worker.RateLimitError();
    }
    if (r.status === 401) tokens.delete(t.id);
    if (r.status < 200 || r.status >= 300) throw new Error(`HTTP ${r.status}`);
  };
  worker = new Worker(t.id, processor, {
    connection,
    concurrency: cfg.concurrency,
    limiter: { max: cfg.limiterMax, duration: cfg.limiterDuration },
    autorun: true,
  });
  worker.on('error', (err) => note('worker', err));
  worker.on('failed', (_job, err) => {
    if (err && err.name !== 'RateLimitError') note('job', err);
  });
  return worker;
}

async function start(c) {
  cfg = c;
  const u = new URL(cfg.simURL);
  simHost = u.hostname;
  simPort = parseInt(u.port, 10);
  agent = new http.Agent({ keepAlive: true, maxFreeSockets: 4096 });
  nb = Math.ceil(cfg.spanMs / cfg.bucketMs) + 1;
  const n = cfg.tenants.length;
  local = new Map(cfg.tenants.map((t, i) => [t.idx, i]));
  ok = new Int32Array(n * nb);
  limited = new Int32Array(n * nb);
  other = new Int32Array(n * nb);
  firstReq = new Float64Array(n).fill(-1);
  const redis = { host: '127.0.0.1', port: cfg.redisPort, maxRetriesPerRequest: null };
  // "shared": one connection for every Worker's regular commands (BullMQ's
  // documented connection reuse); each Worker still opens its own blocking
  // connection. "per-worker": each Worker its own connection too (what
  // passing connection options does).
  const shared = cfg.connection === 'shared' ? new IORedis(redis) : null;
  workers = cfg.tenants.map((t) => makeWorker(t, shared || new IORedis(redis)));
  await Promise.all(workers.map((w) => w.waitUntilReady()));
  process.send({ type: 'ready', at: Date.now() });
}

function stop(path) {
  const mem = process.memoryUsage();
  const out = {
    tenants: cfg.tenants.map((t) => t.idx),
    bucket_ms: cfg.bucketMs,
    nb,
    ok: Array.from(ok),
    limited: Array.from(limited),
    other: Array.from(other),
    first_request_ms: Array.from(firstReq),
    called_at: Array.from(calledAt),
    tokens_issued: tokensIssued,
    errors,
    memory: { rss_mb: mem.rss / 2 ** 20, heap_used_mb: mem.heapUsed / 2 ** 20, heap_total_mb: mem.heapTotal / 2 ** 20, external_mb: mem.external / 2 ** 20 },
  };
  writeFileSync(path, JSON.stringify(out));
  process.send({ type: 'stopped' }, () => process.exit(0));
}

process.on('message', (m) => {
  if (m.type === 'start') {
    start(m.cfg).catch((err) => {
      process.send({ type: 'error', error: String(err && err.stack ? err.stack : err) });
      process.exit(1);
    });
  } else if (m.type === 'stop') {
    stop(m.path);
  }
});
process.on('disconnect', () => process.exit(0));
