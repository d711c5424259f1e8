// orgdispatch dashboard: polls GET v1/tenants about once a second and renders
// one lane per tenant. Only the rows in view exist in the DOM (a fixed row
// height makes that exact), rows are keyed by tenant id and updated in place,
// and each tenant keeps a fixed-size ring of throughput samples, so the page
// stays smooth with thousands of tenants.
'use strict';

(() => {
  const API = 'v1/tenants';
  const AUDIT_API = 'v1/audit?limit=100';
  const AUDIT_POLL_MS = 5000;
  const POLL_MS = 1000;
  const POLL_TIMEOUT_MS = 5000;
  const HISTORY = 120; // samples per tenant (~2 minutes at one a second)
  const OVERSCAN = 8; // rows rendered above and below the visible ones
  const TOKEN_KEY = 'orgdispatch.apiToken';
  const SPARK_W = 112, SPARK_H = 30; // a lane's sparkline, CSS px (style.css .spark)
  const MIN_SPAN = 30; // the chart's time axis starts at 30 samples and grows to HISTORY

  // Lane states: the API's strings, the CSS class, text, glyph (state is never
  // shown by colour alone) and the "paused first" sort rank.
  const STATES = {
    paused: { cls: 'paused', label: 'Paused', icon: '❚❚', rank: 0 },
    'credentials rejected': { cls: 'creds', label: 'Credentials rejected', icon: '✕', rank: 1 },
    'token endpoint unavailable': { cls: 'token', label: 'Token endpoint unavailable', icon: '⚠', rank: 2 },
    stopped: { cls: 'stopped', label: 'Stopped', icon: '■', rank: 3 },
    'no workers': { cls: 'noworkers', label: 'No workers', icon: '○', rank: 4 },
    running: { cls: 'running', label: 'Running', icon: '●', rank: 5 },
  };
  const SORTS = {
    state: { dir: 1 },
    id: { dir: 1 },
    throughput: { dir: -1 },
    backlog: { dir: -1 },
    rate_limited: { dir: -1 },
  };

  const $ = (id) => document.getElementById(id);
  const el = {
    conn: $('conn'), connText: $('conn-text'),
    tenants: $('t-tenants'), running: $('t-running'), paused: $('t-paused'), pausedNote: $('t-paused-note'),
    blocked: $('t-blocked'), blockedNote: $('t-blocked-note'), rate: $('t-rate'), spark: $('t-spark'),
    backlog: $('t-backlog'), backlogNote: $('t-backlog-note'), r429: $('t-429'),
    filter: $('filter'), stateFilter: $('state-filter'), sort: $('sort'), dir: $('dir'), count: $('count'),
    lanes: $('lanes'), viewport: $('viewport'), spacer: $('spacer'), empty: $('empty'),
    template: $('row-template'), auth: $('auth'), authForm: $('auth-form'), authError: $('auth-error'), token: $('token'),
  };

  const nf = new Intl.NumberFormat(undefined);
  const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: 'base' });

  // ---- model -------------------------------------------------------------

  /** tenant id -> { d: latest record, st: STATES entry, hist: Float32Array, n, head } */
  const tenants = new Map();
  let order = []; // filtered + sorted tenant ids
  let seenOrder = []; // ids in API order, to notice removed tenants
  const totalHist = { hist: new Float32Array(HISTORY), n: 0, head: 0 };
  let clockOffset = 0; // server clock - local clock (see observeSkew)
  let lastOK = 0;
  let lastError = '';
  let failures = 0;
  let waitingForToken = false;
  let pollTimer = 0;
  let scaling = { wanted: 0, scalable: 0 }; // the answer's replicas_wanted, scalable_backlog

  const view = {
    q: '',
    state: '',
    sort: 'state',
    dir: 1,
  };

  function stateOf(d) {
    let s = typeof d.state === 'string' && d.state ? d.state : 'running';
    if (d.paused && s === 'running') s = 'paused';
    return STATES[s] || { cls: 'other', label: s.charAt(0).toUpperCase() + s.slice(1), icon: '◆', rank: 4 };
  }

  // A tenant is paused when its consumer is, whatever its lanes report (a
  // paused tenant whose credentials were also rejected shows both).
  function isPaused(t) { return t.d.paused || t.st.cls === 'paused'; }

  // observeSkew learns how far the server's clock is from ours, so that
  // countdowns to paused_until (server time) are right on a skewed laptop.
  // until - remaining is the server's clock when it built the answer; answers
  // may be cached for a moment, so each estimate is at most the true offset
  // and the largest one seen is the best. Offsets under 2 s are taken as 0.
  let skew = 0, skewSeen = false;
  function observeSkew(untilMs, remainingSec) {
    const est = untilMs - remainingSec * 1000 - Date.now();
    if (!skewSeen || est > skew || est < skew - 5000) skew = est;
    skewSeen = true;
    clockOffset = Math.abs(skew) < 2000 ? 0 : skew;
  }

  function num(v) {
    const n = typeof v === 'number' ? v : Number(v);
    return Number.isFinite(n) ? n : 0;
  }

  function time(v) {
    if (!v) return 0;
    const t = Date.parse(v);
    return Number.isFinite(t) && t > 0 ? t : 0;
  }

  // classesOf reads a tenant's classes ([{priority, backlog, drain_seconds}],
  // see dispatcher.ClassStatus) as {urgent, normal, bulk} of {n, drain}.
  const CLASSES = ['urgent', 'normal', 'bulk'];
  function classesOf(v) {
    const out = {};
    for (const c of Array.isArray(v) ? v : []) {
      if (c && CLASSES.includes(c.priority)) out[c.priority] = { n: num(c.backlog), drain: c.drain_seconds };
    }
    return out;
  }

  // drainOf is a tenant's time to drain: seconds, Infinity (null with jobs
  // held: no lane can run them), or NaN when the API gives none.
  function drainOf(raw) {
    if (!('drain_seconds' in raw)) return NaN;
    return raw.drain_seconds === null ? Infinity : num(raw.drain_seconds);
  }

  function push(ring, v) {
    ring.hist[ring.head] = v;
    ring.head = (ring.head + 1) % HISTORY;
    if (ring.n < HISTORY) ring.n++;
  }

  // ingest takes one answer of GET v1/tenants ({"tenants": [...]}, see
  // dispatcher.TenantStatus).
  function ingest(body) {
    const list = body && Array.isArray(body.tenants) ? body.tenants : [];
    scaling = { wanted: num(body && body.replicas_wanted), scalable: num(body && body.scalable_backlog) };

    const ids = [];
    let sumDone = 0;
    for (const raw of list) {
      if (!raw) continue;
      const id = typeof raw.id === 'string' ? raw.id : '';
      if (!id) continue;
      ids.push(id);
      let t = tenants.get(id);
      if (!t) {
        t = { d: null, st: null, hist: new Float32Array(HISTORY), n: 0, head: 0 };
        tenants.set(id, t);
      }
      const done = num(raw.done_per_sec);
      const d = {
        id,
        backlog: num(raw.backlog),
        inFlight: num(raw.in_flight),
        concurrency: num(raw.concurrency),
        rate: num(raw.rate_per_sec),
        done,
        succeeded: num(raw.succeeded),
        retried: num(raw.retried),
        dead: num(raw.dead),
        r429: num(raw.rate_limited),
        pausedUntil: time(raw.paused_until),
        paused: !!raw.paused,
        reason: raw.pause_reason || '',
        by: raw.paused_by || '',
        lastError: raw.last_error || '',
        lastErrorAt: time(raw.last_error_at),
        replicas: num(raw.replicas),
        state: raw.state,
        classes: classesOf(raw.classes),
        drain: drainOf(raw),
      };
      if (d.pausedUntil && typeof raw.pause_remaining_seconds === 'number') observeSkew(d.pausedUntil, raw.pause_remaining_seconds);
      t.d = d;
      t.st = stateOf(d);
      push(t, done);
      sumDone += done;
    }
    if (ids.length !== seenOrder.length || ids.some((id, i) => id !== seenOrder[i])) {
      const keep = new Set(ids);
      for (const id of tenants.keys()) if (!keep.has(id)) tenants.delete(id);
      seenOrder = ids;
    }
    push(totalHist, sumDone);
  }

  function serverTime() {
    return Date.now() + clockOffset;
  }

  // ---- filter and sort ---------------------------------------------------

  function matches(t, q) {
    if (view.state && t.st.cls !== view.state && !(view.state === 'paused' && isPaused(t))) return false;
    return !q || t.d.id.toLowerCase().includes(q);
  }

  function compare(a, b) {
    const A = tenants.get(a), B = tenants.get(b);
    let c = 0;
    switch (view.sort) {
      case 'state':
        c = (isPaused(A) ? 0 : A.st.rank) - (isPaused(B) ? 0 : B.st.rank);
        if (!c && isPaused(A)) c = (A.d.pausedUntil || Infinity) - (B.d.pausedUntil || Infinity);
        break;
      case 'throughput': c = round1(A.d.done) - round1(B.d.done); break;
      case 'backlog': c = A.d.backlog - B.d.backlog; break;
      case 'rate_limited': c = A.d.r429 - B.d.r429; break;
    }
    if (!c || Number.isNaN(c)) return view.sort === 'id' ? view.dir * collator.compare(a, b) : collator.compare(a, b);
    return view.dir * c;
  }

  function round1(v) { return Math.round(v * 10) / 10; }

  function reorder() {
    const q = view.q.trim().toLowerCase();
    const ids = [];
    for (const id of seenOrder) {
      const t = tenants.get(id);
      if (t && matches(t, q)) ids.push(id);
    }
    ids.sort(compare);
    order = ids;
  }

  // ---- rows (virtualised, keyed) -----------------------------------------

  let rowH = 56;
  const live = new Map(); // tenant id -> row
  const pool = [];

  function makeRow() {
    const node = el.template.content.firstElementChild.cloneNode(true);
    const q = (s) => node.querySelector(s);
    const row = {
      node,
      id: '', top: -1, cache: Object.create(null),
      tenant: q('.tenant-id'), badgeIcon: q('.badge-icon'), badgeText: q('.badge-text'), replicas: q('.replicas'),
      spark: q('.spark'), done: q('.done'), backlog: q('.c-backlog'),
      backlogN: q('.backlog-n'), backlogClasses: q('.backlog-classes'), backlogDrain: q('.backlog-drain'),
      inflight: q('.inflight-text'), meter: q('.meter-fill'), rate: q('.c-rate'),
      countdown: q('.countdown'), by: q('.by'), reason: q('.reason'), r429: q('.c-429'),
      error: q('.error-text'), errorAge: q('.error-age'),
      sparkSig: '',
    };
    el.spacer.appendChild(node);
    return row;
  }

  function acquire(id) {
    const row = pool.pop() || makeRow();
    row.id = id;
    row.cache = Object.create(null);
    row.sparkSig = '';
    row.node.hidden = false;
    row.node.dataset.tenant = id;
    live.set(id, row);
    return row;
  }

  function release(row) {
    live.delete(row.id);
    row.id = '';
    row.top = -1;
    row.node.hidden = true;
    delete row.node.dataset.tenant;
    pool.push(row);
  }

  // set writes a value into the DOM only when it changed since the last write.
  function set(row, key, value, write) {
    if (row.cache[key] === value) return;
    row.cache[key] = value;
    write(value);
  }
  const text = (node) => (v) => { node.textContent = v; };

  function renderRows(full) {
    const vp = el.viewport;
    const total = order.length;
    const height = total * rowH + 'px';
    if (el.spacer.style.height !== height) el.spacer.style.height = height;
    el.lanes.setAttribute('aria-rowcount', String(total + 1));
    // Layout is read once per render, after the one write it depends on
    // (the list's height clamps the scroll position) and before the rows'.
    // The browser may clamp the scroll position of a list that just got
    // shorter only at its next frame: clamp it here, so a filter never shows
    // an empty frame.
    const h = vp.clientHeight || window.innerHeight;
    const maxScroll = Math.max(0, el.spacer.offsetTop + total * rowH - h);
    let scroll = vp.scrollTop;
    if (scroll > maxScroll) { scroll = maxScroll; vp.scrollTop = maxScroll; }
    const y = Math.max(0, scroll - el.spacer.offsetTop);
    const first = Math.max(0, Math.floor(y / rowH) - OVERSCAN);
    const last = Math.min(total, Math.ceil((y + h) / rowH) + OVERSCAN);

    const want = new Set();
    for (let i = first; i < last; i++) want.add(order[i]);
    for (const row of [...live.values()]) if (!want.has(row.id)) release(row);

    const now = serverTime();
    for (let i = first; i < last; i++) {
      const id = order[i];
      const row = live.get(id) || acquire(id);
      const top = i * rowH;
      if (row.top !== top) {
        row.top = top;
        row.node.style.transform = `translateY(${top}px)`;
        row.node.setAttribute('aria-rowindex', String(i + 2));
      }
      updateRow(row, tenants.get(id), now, full);
    }
  }

  function updateRow(row, t, now, full) {
    const d = t.d, st = t.st;
    set(row, 'id', d.id, (v) => { row.tenant.textContent = v; row.tenant.title = v; });
    set(row, 'state', st.cls + '|' + st.label, () => {
      row.node.dataset.state = st.cls;
      row.badgeIcon.textContent = st.icon;
      row.badgeText.textContent = st.label;
    });
    set(row, 'replicas', d.replicas, (v) => {
      row.replicas.textContent = v ? `${v} ${v === 1 ? 'replica' : 'replicas'}` : '';
    });
    set(row, 'done', fmtRate(d.done), (v) => { row.done.innerHTML = `${v}<span class="u">/s</span>`; });
    set(row, 'backlog', d.backlog, (v) => {
      row.backlogN.textContent = nf.format(v);
      row.backlog.classList.toggle('zero', v === 0);
    });
    const held = CLASSES.filter((c) => d.classes[c] && d.classes[c].n > 0);
    set(row, 'classes', held.map((c) => c + d.classes[c].n).join(' '), () => {
      row.backlogClasses.textContent = held.map((c) => `${c[0].toUpperCase()}${nf.format(d.classes[c].n)}`).join(' ');
      row.backlogClasses.title = CLASSES.map((c) => {
        const k = d.classes[c];
        if (!k) return '';
        const when = k.drain === null ? 'no lane can run it' : `a new job done in ${duration(num(k.drain) * 1000)}`;
        return `${c}: ${nf.format(k.n)} held, ${when}`;
      }).filter(Boolean).join('\n');
    });
    set(row, 'drain', d.drain, (v) => {
      row.backlogDrain.textContent = Number.isNaN(v) || v === 0 ? '' : v === Infinity ? 'never drains' : `drains in ${duration(v * 1000)}`;
      row.backlogDrain.toggleAttribute('data-unbounded', v === Infinity);
      row.backlogDrain.title = v === Infinity ? 'No lane can run its jobs now (all parked)' : 'Until every job held is done at the tenant\'s rate, after the rest of a pause';
    });
    set(row, 'inflight', d.inFlight + '/' + d.concurrency, () => {
      row.inflight.innerHTML = d.concurrency
        ? `${nf.format(d.inFlight)} <span class="u">/ ${nf.format(d.concurrency)}</span>`
        : nf.format(d.inFlight);
      const f = d.concurrency ? Math.min(1, d.inFlight / d.concurrency) : 0;
      row.meter.style.width = (f * 100).toFixed(1) + '%';
    });
    set(row, 'rate', fmtRate(d.rate), (v) => { row.rate.innerHTML = `${v}<span class="u">/s</span>`; });
    set(row, 'r429', d.r429, (v) => {
      row.r429.textContent = nf.format(v);
      row.r429.classList.toggle('zero', v === 0);
    });
    updatePause(row, t, now);
    set(row, 'error', d.lastError, (v) => {
      row.error.textContent = v || 'none';
      row.error.title = v;
      row.error.classList.toggle('none', !v);
    });
    set(row, 'errorAge', d.lastError && d.lastErrorAt ? ago(now - d.lastErrorAt) : '', text(row.errorAge));
    if (full || row.sparkSig !== sparkSig(t)) drawRowSpark(row, t);
  }

  function updatePause(row, t, now) {
    const d = t.d;
    let cd = '—', reason = '', by = '';
    if (isPaused(t)) {
      const left = d.pausedUntil ? d.pausedUntil - now : 0;
      cd = !d.pausedUntil ? 'Paused' : left > 0 ? `${clock(left)} left` : 'resuming…';
      reason = d.reason;
      by = d.by ? `by ${d.by}` : '';
    }
    set(row, 'countdown', cd, (v) => {
      row.countdown.textContent = v;
      if (d.pausedUntil) row.countdown.title = 'until ' + new Date(d.pausedUntil - clockOffset).toLocaleTimeString();
      else row.countdown.removeAttribute('title');
    });
    set(row, 'reason', reason, (v) => { row.reason.textContent = v; row.reason.title = v; });
    set(row, 'by', by, (v) => { row.by.textContent = v; row.by.title = v; });
    set(row, 'paused', isPaused(t), (v) => row.node.toggleAttribute('data-paused', v));
  }

  // ---- sparklines ----------------------------------------------------------

  let colors = null;
  function palette() {
    if (!colors) {
      const cs = getComputedStyle(document.documentElement);
      const v = (n) => cs.getPropertyValue(n).trim();
      colors = { line: v('--accent'), fill: v('--accent-fill'), paused: v('--paused'), idle: v('--faint'), grid: v('--border') };
    }
    return colors;
  }
  matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => {
    colors = null;
    for (const row of live.values()) row.sparkSig = '';
    scheduleRender(true);
  });

  // tone is the chart's colour: the accent while a lane runs, the pause
  // colour while paused, grey when it cannot run (credentials, no workers…).
  function tone(t) { return isPaused(t) ? 'paused' : t.st.cls === 'running' ? 'line' : 'idle'; }

  function sparkSig(t) { return t.n + ':' + t.head + ':' + tone(t); }

  function drawRowSpark(row, t) {
    row.sparkSig = sparkSig(t);
    drawSpark(row.spark, t, tone(t), SPARK_W, SPARK_H);
  }

  // drawSpark draws a ring's samples on a canvas of a fixed CSS size w×h
  // (sizes are given, never measured: reading layout between DOM writes would
  // force a reflow per row).
  function drawSpark(canvas, ring, tone, w, h) {
    const dpr = window.devicePixelRatio || 1;
    const W = Math.round(w * dpr), H = Math.round(h * dpr);
    if (canvas.width !== W || canvas.height !== H) { canvas.width = W; canvas.height = H; }
    const ctx = canvas.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    const c = palette();
    ctx.strokeStyle = c.grid;
    ctx.lineWidth = 1;
    ctx.beginPath();
    ctx.moveTo(0, h - 0.5);
    ctx.lineTo(w, h - 0.5);
    ctx.stroke();
    const n = ring.n;
    if (n < 2) return;
    let max = 0;
    for (let i = 0; i < n; i++) max = Math.max(max, ring.hist[(ring.head - n + i + HISTORY) % HISTORY]);
    const span = Math.min(HISTORY, Math.max(MIN_SPAN, n));
    const step = w / (span - 1);
    const x0 = w - (n - 1) * step;
    const pad = 2;
    const top = max * 1.15; // headroom, so a steady rate reads as a plateau, not the frame
    const y = (v) => h - 1 - (top > 0 ? (v / top) * (h - 1 - pad) : 0);
    ctx.beginPath();
    for (let i = 0; i < n; i++) {
      const v = ring.hist[(ring.head - n + i + HISTORY) % HISTORY];
      const x = x0 + i * step;
      if (i === 0) ctx.moveTo(x, y(v)); else ctx.lineTo(x, y(v));
    }
    ctx.lineJoin = 'round';
    ctx.lineWidth = 1.5;
    ctx.strokeStyle = c[tone];
    ctx.stroke();
    ctx.lineTo(w, h);
    ctx.lineTo(x0, h);
    ctx.closePath();
    ctx.globalAlpha = tone === 'line' ? 1 : 0.35;
    ctx.fillStyle = c.fill;
    ctx.fill();
    ctx.globalAlpha = 1;
  }

  // ---- header ---------------------------------------------------------------

  function renderTotals() {
    let paused = 0, r429 = 0, done = 0, backlog = 0, dispatchable = 0;
    let nextResume = Infinity;
    const counts = { running: 0, paused: 0, creds: 0, token: 0, stopped: 0, noworkers: 0, other: 0 };
    for (const t of tenants.values()) {
      const d = t.d;
      counts[t.st.cls] = (counts[t.st.cls] || 0) + 1;
      if (isPaused(t)) {
        paused++;
        if (d.pausedUntil) nextResume = Math.min(nextResume, d.pausedUntil);
      } else {
        dispatchable += d.backlog;
      }
      r429 += d.r429;
      done += d.done;
      backlog += d.backlog;
    }
    counts.paused = paused;
    el.tenants.textContent = nf.format(tenants.size);
    el.running.textContent = nf.format(counts.running);
    el.paused.textContent = nf.format(paused);
    el.paused.parentElement.toggleAttribute('data-nonzero', paused > 0);
    el.pausedNote.textContent = paused && nextResume < Infinity ? `next resumes in ${clock(nextResume - serverTime())}` : '';
    const blocked = counts.creds + counts.token;
    el.blocked.textContent = nf.format(blocked);
    el.blocked.parentElement.toggleAttribute('data-nonzero', blocked > 0);
    const idle = counts.stopped + counts.noworkers + counts.other;
    const both = counts.creds && counts.token;
    el.blockedNote.textContent = blocked
      ? [counts.creds && `${counts.creds} credentials${both ? '' : ' rejected'}`, counts.token && `${counts.token} token endpoint${both ? '' : ' down'}`].filter(Boolean).join(' · ')
      : idle ? `${idle} without a running lane` : 'credentials or token endpoint';
    el.blockedNote.title = blocked
      ? `${counts.creds} with credentials rejected, ${counts.token} with the token endpoint unavailable`
      : '';
    el.rate.textContent = fmtRate(done);
    el.backlog.textContent = nf.format(dispatchable);
    el.backlogNote.textContent = `${nf.format(backlog)} queued` +
      (scaling.wanted ? ` · ${nf.format(scaling.wanted)} ${scaling.wanted === 1 ? 'replica' : 'replicas'} wanted` : '');
    el.backlogNote.title = scaling.wanted
      ? `Worker replicas for every tenant bound by its concurrency to reach its quota; ${nf.format(scaling.scalable)} jobs of such tenants (more replicas would work them off faster)`
      : '';
    el.r429.textContent = nf.format(r429);
    el.r429.parentElement.toggleAttribute('data-nonzero', r429 > 0);
    drawSpark(el.spark, totalHist, 'line', 160, 36);
    el.spark.dataset.samples = String(totalHist.n);

    for (const opt of el.stateFilter.options) {
      if (!opt.dataset.label) opt.dataset.label = opt.textContent;
      const n = opt.value ? counts[opt.value] || 0 : tenants.size;
      opt.textContent = `${opt.dataset.label} (${nf.format(n)})`;
    }
    document.title = paused ? `(${paused} paused) orgdispatch` : 'orgdispatch';
  }

  function renderCount() {
    const n = order.length, all = tenants.size;
    el.count.textContent = n === all ? `${nf.format(all)} tenants` : `${nf.format(n)} of ${nf.format(all)} tenants`;
    const empty = n === 0 && lastOK > 0;
    el.empty.hidden = !empty;
    if (empty) el.empty.textContent = all ? 'No tenant matches this filter.' : 'No tenants are configured.';
  }

  function renderConn() {
    let state, msg;
    if (waitingForToken) { state = 'auth'; msg = 'Waiting for API token'; }
    else if (!lastOK) { state = failures ? 'offline' : 'connecting'; msg = failures ? 'Cannot reach the API — retrying' : 'Connecting…'; }
    else {
      const age = Date.now() - lastOK;
      if (failures >= 2 || (failures && age > 3000)) { state = 'offline'; msg = `Offline — last update ${ago(age)}`; }
      else { state = 'live'; msg = age < 2500 ? 'Live' : `Live · updated ${ago(age)}`; }
    }
    el.conn.dataset.conn = state;
    el.connText.textContent = msg;
    el.conn.title = failures && lastError ? `Last poll failed: ${lastError}` : '';
    el.viewport.classList.toggle('stale', state === 'offline');
  }

  let renderQueued = false, renderFull = false;
  function scheduleRender(full) {
    renderFull = renderFull || !!full;
    if (renderQueued) return;
    renderQueued = true;
    requestAnimationFrame(() => {
      renderQueued = false;
      const f = renderFull;
      renderFull = false;
      renderRows(f);
    });
  }

  function renderAll() {
    reorder();
    renderRows(false);
    renderTotals();
    renderCount();
    renderConn();
  }

  // ---- formatting ------------------------------------------------------------

  function fmtRate(v) {
    if (!v) return '0';
    if (v >= 1000) return nf.format(Math.round(v));
    if (v >= 10) return v.toFixed(0);
    if (v >= 0.1) return v.toFixed(1);
    return v.toFixed(2);
  }

  function clock(ms) {
    const s = Math.max(0, Math.ceil(ms / 1000));
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
    const mm = h ? String(m).padStart(2, '0') : String(m);
    return (h ? h + ':' : '') + mm + ':' + String(sec).padStart(2, '0');
  }

  // duration formats a time to come: 0.4s, 12s, 4m12s, 3h05m, 2d4h.
  function duration(ms) {
    const s = Math.max(0, ms / 1000);
    if (s < 10) return `${s.toFixed(1)}s`;
    if (s < 60) return `${Math.round(s)}s`;
    const r = Math.round(s);
    if (r < 3600) return `${Math.floor(r / 60)}m${String(r % 60).padStart(2, '0')}s`;
    if (r < 86400) return `${Math.floor(r / 3600)}h${String(Math.floor((r % 3600) / 60)).padStart(2, '0')}m`;
    return `${Math.floor(r / 86400)}d${Math.floor((r % 86400) / 3600)}h`;
  }

  function ago(ms) {
    const s = Math.max(0, Math.round(ms / 1000));
    if (s < 5) return 'just now';
    if (s < 60) return `${s}s ago`;
    if (s < 3600) return `${Math.floor(s / 60)}m ago`;
    if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
    return `${Math.floor(s / 86400)}d ago`;
  }

  // ---- polling and auth -------------------------------------------------------

  function token() {
    try { return sessionStorage.getItem(TOKEN_KEY) || ''; } catch { return ''; }
  }

  async function poll() {
    clearTimeout(pollTimer);
    if (waitingForToken) return;
    const started = performance.now();
    const ctrl = new AbortController();
    const timer = setTimeout(() => ctrl.abort(), POLL_TIMEOUT_MS);
    const tok = token();
    try {
      const headers = { Accept: 'application/json' };
      if (tok) headers.Authorization = 'Bearer ' + tok;
      const res = await fetch(API, { headers, cache: 'no-store', signal: ctrl.signal });
      if (res.status === 401) {
        askToken(tok ? 'That token was not accepted.' : '');
        return;
      }
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const body = await res.json();
      ingest(body);
      lastOK = Date.now();
      failures = 0;
      renderAll();
    } catch (err) {
      failures++;
      lastError = err && err.name === 'AbortError' ? 'timed out' : String(err && err.message || err);
      renderConn();
    } finally {
      clearTimeout(timer);
    }
    if (waitingForToken) return;
    const delay = failures ? Math.min(5000, 1000 * 2 ** (failures - 1)) : Math.max(100, POLL_MS - (performance.now() - started));
    pollTimer = setTimeout(poll, delay);
  }

  function askToken(message) {
    try { sessionStorage.removeItem(TOKEN_KEY); } catch { /* storage unavailable */ }
    waitingForToken = true;
    renderConn();
    el.authError.hidden = !message;
    el.authError.textContent = message;
    if (!el.auth.open) el.auth.showModal();
    el.token.value = '';
    el.token.focus();
  }

  el.authForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const v = el.token.value.trim();
    if (!v) return;
    try { sessionStorage.setItem(TOKEN_KEY, v); } catch { /* storage unavailable */ }
    el.token.value = '';
    el.auth.close();
    waitingForToken = false;
    renderConn();
    poll();
  });
  el.auth.addEventListener('cancel', (ev) => ev.preventDefault()); // nothing to show without a token

  // ---- controls ---------------------------------------------------------------

  function readHash() {
    const p = new URLSearchParams(location.hash.slice(1));
    view.q = p.get('q') || '';
    view.state = p.get('state') || '';
    view.sort = SORTS[p.get('sort')] ? p.get('sort') : 'state';
    const dir = p.get('dir');
    view.dir = dir === 'asc' ? 1 : dir === 'desc' ? -1 : SORTS[view.sort].dir;
    el.filter.value = view.q;
    el.stateFilter.value = view.state;
    el.sort.value = view.sort;
  }

  function writeHash() {
    const p = new URLSearchParams();
    if (view.q) p.set('q', view.q);
    if (view.state) p.set('state', view.state);
    if (view.sort !== 'state') p.set('sort', view.sort);
    if (view.dir !== SORTS[view.sort].dir) p.set('dir', view.dir > 0 ? 'asc' : 'desc');
    const s = p.toString();
    history.replaceState(null, '', s ? '#' + s : location.pathname + location.search);
  }

  function viewChanged() {
    el.dir.textContent = view.dir > 0 ? '↑' : '↓';
    el.dir.setAttribute('aria-label', view.dir > 0 ? 'Ascending; reverse sort order' : 'Descending; reverse sort order');
    for (const h of el.lanes.querySelectorAll('.lane-head [role=columnheader]')) {
      if (h.dataset.sort === view.sort) h.setAttribute('aria-sort', view.dir > 0 ? 'ascending' : 'descending');
      else h.removeAttribute('aria-sort');
    }
    writeHash();
    reorder();
    renderRows(false);
    renderCount();
  }

  function setSort(key, dir) {
    view.sort = key;
    view.dir = dir ?? SORTS[key].dir;
    el.sort.value = key;
    viewChanged();
  }

  el.filter.addEventListener('input', () => { view.q = el.filter.value; viewChanged(); });
  el.stateFilter.addEventListener('change', () => { view.state = el.stateFilter.value; viewChanged(); });
  el.sort.addEventListener('change', () => setSort(el.sort.value));
  el.dir.addEventListener('click', () => { view.dir = -view.dir; viewChanged(); });
  el.lanes.querySelector('.lane-head').addEventListener('click', (ev) => {
    const b = ev.target.closest('button[data-sort]');
    if (!b) return;
    const key = b.dataset.sort;
    if (key === view.sort) { view.dir = -view.dir; viewChanged(); } else setSort(key);
  });
  el.viewport.addEventListener('scroll', () => scheduleRender(false), { passive: true });
  window.addEventListener('resize', () => scheduleRender(true));
  window.addEventListener('hashchange', () => { readHash(); viewChanged(); });
  document.addEventListener('keydown', (ev) => {
    if (ev.key === '/' && document.activeElement !== el.filter && !el.auth.open) {
      ev.preventDefault();
      el.filter.focus();
      el.filter.select();
    } else if (ev.key === 'Escape' && document.activeElement === el.filter && el.filter.value) {
      el.filter.value = '';
      view.q = '';
      viewChanged();
    }
  });

  // Countdowns, "x ago" and the connection state tick locally every second,
  // on the second, between polls.
  function tick() {
    const now = serverTime();
    for (const row of live.values()) {
      const t = tenants.get(row.id);
      if (!t) continue;
      updatePause(row, t, now);
      const d = t.d;
      set(row, 'errorAge', d.lastError && d.lastErrorAt ? ago(now - d.lastErrorAt) : '', text(row.errorAge));
    }
    if (lastOK) {
      let paused = 0, next = Infinity;
      for (const t of tenants.values()) if (isPaused(t)) { paused++; if (t.d.pausedUntil) next = Math.min(next, t.d.pausedUntil); }
      el.pausedNote.textContent = paused && next < Infinity ? `next resumes in ${clock(next - now)}` : '';
    }
    renderConn();
    setTimeout(tick, 1000 - (Date.now() % 1000) + 5);
  }

  // ---- audit trail ------------------------------------------------------------

  // While the panel is open, the latest audit records are fetched every few
  // seconds and shown newest first. Every field is set as text, never HTML:
  // reasons and names come from operators, producers and platforms.
  const audit = { panel: $('audit-panel'), rows: $('audit-rows'), status: $('audit-status'), timer: 0 };

  async function pollAudit() {
    clearTimeout(audit.timer);
    if (!audit.panel.open) return;
    const headers = { Accept: 'application/json' };
    const tok = token();
    if (tok) headers.Authorization = 'Bearer ' + tok;
    try {
      const res = await fetch(AUDIT_API, { headers, cache: 'no-store' });
      if (!res.ok) throw new Error(res.status === 401 || res.status === 403 ? 'not allowed with this token' : `HTTP ${res.status}`);
      renderAudit((await res.json()).records || []);
    } catch (err) {
      audit.status.textContent = 'Audit trail unavailable: ' + String(err && err.message || err);
    }
    audit.timer = setTimeout(pollAudit, AUDIT_POLL_MS);
  }

  function renderAudit(records) {
    const frag = document.createDocumentFragment();
    for (const r of records) {
      const tr = document.createElement('tr');
      tr.dataset.seq = String(r.seq || '');
      tr.dataset.action = String(r.action || '');
      const t = new Date(r.time);
      const detail = r.detail ? Object.keys(r.detail).sort().map((k) => `${k}=${r.detail[k]}`).join(' ') : '';
      const cells = [
        ['a-time', isNaN(t) ? '' : t.toLocaleString()],
        ['a-who', r.actor || ''],
        ['a-action', r.action || ''],
        ['a-tenant', r.tenant || '—'],
        ['a-why', [r.reason, detail].filter(Boolean).join(' · ')],
      ];
      for (const [cls, text] of cells) {
        const td = document.createElement('td');
        td.className = cls;
        td.textContent = text;
        tr.appendChild(td);
      }
      frag.appendChild(tr);
    }
    audit.rows.replaceChildren(frag);
    audit.status.textContent = records.length ? '' : 'No audit records.';
  }

  audit.panel.addEventListener('toggle', pollAudit);

  // The schedules panel lists one tenant's schedules (GET
  // v1/tenants/{id}/schedules) while it is open, refreshed every few
  // seconds. It only reads, as the rest of the dashboard: schedules are
  // added and cancelled through the API or the CLI.
  const sched = { panel: $('sched-panel'), tenant: $('sched-tenant'), rows: $('sched-rows'), status: $('sched-status'), timer: 0 };

  function fmtNext(iso, zone) {
    const t = new Date(iso);
    if (isNaN(t)) return '';
    try {
      return t.toLocaleString(undefined, { timeZone: zone || 'UTC', timeZoneName: 'short' });
    } catch (_) {
      return t.toISOString();
    }
  }

  async function pollSchedules() {
    clearTimeout(sched.timer);
    if (!sched.panel.open) return;
    const id = sched.tenant.value.trim();
    if (!id) {
      sched.rows.replaceChildren();
      sched.status.textContent = 'Enter a tenant id.';
      return;
    }
    const headers = { Accept: 'application/json' };
    const tok = token();
    if (tok) headers.Authorization = 'Bearer ' + tok;
    try {
      const res = await fetch('v1/tenants/' + encodeURIComponent(id) + '/schedules', { headers, cache: 'no-store' });
      if (res.status === 404) throw new Error('no tenant ' + id);
      if (!res.ok) throw new Error(res.status === 401 || res.status === 403 ? 'not allowed with this token' : `HTTP ${res.status}`);
      if (sched.tenant.value.trim() === id) renderSchedules((await res.json()).schedules || []);
    } catch (err) {
      sched.rows.replaceChildren();
      sched.status.textContent = 'Schedules unavailable: ' + String(err && err.message || err);
    }
    sched.timer = setTimeout(pollSchedules, AUDIT_POLL_MS);
  }

  function renderSchedules(list) {
    const frag = document.createDocumentFragment();
    for (const s of list) {
      const tr = document.createElement('tr');
      tr.dataset.name = String(s.name || '');
      const job = s.job || {};
      const cells = [
        ['s-name', s.name || ''],
        ['s-when', s.run_at ? 'once' : 'cron ' + (s.cron || '')],
        ['s-zone', s.run_at ? '—' : (s.time_zone || 'UTC')],
        ['s-next', (s.next && s.next.length) ? fmtNext(s.next[0], s.time_zone) : '—'],
        ['s-job', job.id || ''],
        ['s-op', job.op || ''],
      ];
      for (const [cls, text] of cells) {
        const td = document.createElement('td');
        td.className = cls;
        td.textContent = text;
        tr.appendChild(td);
      }
      if (s.next && s.next[0]) tr.querySelector('.s-next').title = s.next.map((n) => fmtNext(n, s.time_zone)).join('\n');
      frag.appendChild(tr);
    }
    sched.rows.replaceChildren(frag);
    sched.status.textContent = list.length ? '' : 'No schedules.';
  }

  sched.panel.addEventListener('toggle', pollSchedules);
  sched.tenant.addEventListener('input', () => { clearTimeout(sched.timer); sched.timer = setTimeout(pollSchedules, 300); });

  rowH = parseFloat(getComputedStyle(document.documentElement).getPropertyValue('--row-h')) || 56;
  readHash();
  viewChanged();
  renderConn();
  poll();
  tick();
})();
