// Infersight's web UI: search, request traces, incidents and the LLM dashboard over the
// JSON API of the same server. No framework and no network beyond this server: the state
// of each page lives in the URL's hash, so every view can be shared as a link.
"use strict";

const page = document.getElementById("page");
const RANGES = ["15m", "1h", "6h", "24h", "7d"];

// ---- API ------------------------------------------------------------------------------

function token() { return sessionStorage.getItem("infersight-token") || ""; }

function headers() {
  const t = token();
  return t ? { Authorization: "Bearer " + t } : {};
}

function askForToken() {
  const form = document.getElementById("token-form");
  form.hidden = false;
  form.onsubmit = (e) => {
    e.preventDefault();
    sessionStorage.setItem("infersight-token", document.getElementById("token").value.trim());
    form.hidden = true;
    route();
  };
}

async function api(path, params) {
  const query = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== undefined && v !== null && v !== "") query.set(k, v);
  }
  const url = path + (query.toString() ? "?" + query : "");
  const response = await fetch(url, { headers: headers() });
  const body = await response.json().catch(() => ({}));
  if (response.status === 401) askForToken();
  if (!response.ok) throw new Error(body.detail || body.error || response.statusText);
  return body;
}

// ---- helpers --------------------------------------------------------------------------

// Says which peer aggregators did not answer (`partial` answers): their records are missing
// from the hits and figures, which must not pass for the whole cluster's. Null when every
// answer is whole.
function partialNote(...answers) {
  const missing = new Map();
  for (const a of answers) for (const [peer, why] of Object.entries((a && a.unanswered_peers) || {})) missing.set(peer, why);
  if (!missing.size) return null;
  return el("div", { class: "partial", id: "partial" }, "Partial answer: ",
    [...missing].map(([peer, why], i) => el("span", { class: "peer", "data-peer": peer, title: why },
      (i ? ", " : "") + peer)),
    " did not answer",
    "; the records they index are not in this page.");
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) node.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

function escapeHtml(s) {
  return s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

// Milliseconds since the epoch of an RFC 3339 time with up to nine fraction digits.
function ms(t) { return Date.parse(String(t).replace(/(\.\d{3})\d+/, "$1")); }

function shortTime(t) {
  const d = new Date(ms(t));
  return d.toISOString().replace("T", " ").replace("Z", "").slice(5, 23);
}

// A length of time in words: `45 s`, `12 min`, `3.5 h`, `2.0 d`.
function spanText(seconds) {
  if (seconds < 120) return Math.round(seconds) + " s";
  if (seconds < 7200) return Math.round(seconds / 60) + " min";
  if (seconds < 172800) return (seconds / 3600).toFixed(1) + " h";
  return (seconds / 86400).toFixed(1) + " d";
}

function fmt(v, digits = 1) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  if (Math.abs(v) >= 1e9) return (v / 1e9).toFixed(1) + "G";
  if (Math.abs(v) >= 1e6) return (v / 1e6).toFixed(1) + "M";
  return Number(v).toFixed(digits);
}

// Words of a query worth highlighting: plain terms and phrases, not fields or operators.
function highlightWords(q) {
  const words = [];
  for (const m of (q || "").matchAll(/"([^"]+)"|(\S+)/g)) {
    const w = m[1] || m[2];
    if (!w || /^(AND|OR|NOT)$/.test(w) || w.includes(":") || w === "*" || w.startsWith("-")) continue;
    words.push(w.replace(/\*$/, "").replace(/^\+/, ""));
  }
  return words.filter((w) => w.length > 1);
}

function highlighted(text, words) {
  let html = escapeHtml(text);
  for (const w of words) {
    const re = new RegExp("(" + escapeHtml(w).replace(/[.*+?^${}()|[\]\\]/g, "\\$&") + ")", "gi");
    html = html.replace(re, "<mark>$1</mark>");
  }
  const span = document.createElement("span");
  span.innerHTML = html;
  return span;
}

function source(r) {
  const res = r.resource || {};
  return [res["k8s.namespace.name"], res["k8s.pod.name"], res["k8s.container.name"]].filter(Boolean).join("/");
}

// A request's trace page. A number (llama.cpp's task ids) names a request only within one
// run of one server: its trace is asked within the line's pod and the hour around it.
function traceHref(r, rid) {
  const href = "#/request/" + encodeURIComponent(rid);
  if (!/^[0-9]+$/.test(rid)) return href;
  const res = r.resource || {};
  const at = ms(r.timestamp);
  const q = new URLSearchParams();
  for (const [k, v] of [["namespace", res["k8s.namespace.name"]], ["pod", res["k8s.pod.name"]],
    ["container", res["k8s.container.name"]]]) if (v) q.set(k, v);
  q.set("from", new Date(at - 30 * 60000).toISOString());
  q.set("to", new Date(at + 30 * 60000).toISOString());
  return href + "?" + q;
}

function hashParams() {
  const [path, query] = location.hash.slice(1).split("?");
  return { path: path || "/search", params: new URLSearchParams(query || "") };
}

function setHash(path, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v) q.set(k, v);
  const next = "#" + path + (q.toString() ? "?" + q : "");
  if (location.hash !== next) location.hash = next; else route();
}

// A histogram answer as bars over its whole range, empty buckets as zeros.
function filled(h) {
  const step = h.interval_ms;
  const first = Math.floor(ms(h.from) / step) * step;
  const at = new Map(h.buckets.map((b) => [ms(b.start), b.count]));
  const xs = [];
  const counts = [];
  for (let x = first; x <= ms(h.to) && xs.length < 2000; x += step) {
    xs.push(x);
    counts.push(at.get(x) || 0);
  }
  return { xs, counts };
}

// uPlot chart of `series` ([{label, values}]) over `xs` (ms), bars when `bars`.
// A uPlot chart of `series` over `xs` (ms); with no value at all, it says so in words
// (`empty`), so that an empty chart is not read as a broken one.
function chart(container, title, xs, series, bars, empty = "no figures in this range") {
  const box = el("div", { class: "chart" }, el("h4", {}, title));
  container.append(box);
  const colors = ["#4fa3ff", "#ff6b6b", "#5ccf8a", "#e0b84f", "#c38cff", "#4fd6d6"];
  const width = Math.max(380, box.clientWidth - 20);
  const opts = {
    width, height: 200,
    scales: { x: { time: true } },
    // In UTC, as every time in the tables and the logs: uPlot draws the browser's zone.
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"),
    axes: [{ stroke: "#8a96a3", grid: { stroke: "#2a333d" } }, { stroke: "#8a96a3", grid: { stroke: "#2a333d" }, size: 64 }],
    series: [{ label: "UTC" }].concat(series.map((s, i) => ({
      label: s.label, stroke: colors[i % colors.length], width: 2,
      fill: bars ? colors[i % colors.length] + "88" : undefined,
      paths: bars && uPlot.paths && uPlot.paths.bars ? uPlot.paths.bars({ size: [0.8, 40] }) : undefined,
      points: { show: !bars },
    }))),
  };
  const data = [xs.map((x) => x / 1000)].concat(series.map((s) => s.values));
  box.dataset.points = String(xs.length);
  box.dataset.nonzero = String(series.some((s) => s.values.some((v) => v !== null && v > 0)));
  new uPlot(opts, data, box);
  if (!series.some((s) => s.values.some((v) => v !== null && v !== undefined))) {
    box.append(el("div", { class: "chart-empty" }, empty));
  }
  return box;
}

// ---- search ---------------------------------------------------------------------------

let tailAbort = null;

function searchRequest(p) {
  let q = p.get("q") || "";
  const extra = [];
  if (p.get("server")) extra.push("llm.server:" + p.get("server"));
  if (p.get("severity")) extra.push("severity_text:" + p.get("severity"));
  if (extra.length) q = (q.trim() && q.trim() !== "*" ? "(" + q + ") AND " : "") + extra.join(" AND ");
  const range = p.get("range") || (p.get("from") ? "" : "1h");
  return {
    q, namespace: p.get("namespace"), pod: p.get("pod"), container: p.get("container"), kind: p.get("kind"),
    from: range ? "now-" + range : p.get("from"), to: range ? "" : p.get("to"),
  };
}

async function renderSearch(p) {
  const field = (name, placeholder, cls) =>
    el("input", { id: name, name, placeholder, value: p.get(name) || "", class: cls || "small" });
  const range = el("select", { id: "range", name: "range" },
    RANGES.map((r) => el("option", { value: r, selected: (p.get("range") || (p.get("from") ? "" : "1h")) === r }, "last " + r)),
    el("option", { value: "", selected: !!p.get("from") && !p.get("range") }, "from/to"));
  const form = el("form", { class: "query", id: "search-form" },
    field("q", "chatcmpl-a269fdcb, \"CUDA out of memory\", llm.e2e_ms:>5000 …", ""),
    range, field("from", "from: 2026-11-27T20:00:00Z"), field("to", "to: now"),
    field("namespace", "namespace"), field("pod", "pod (vllm-*)"), field("container", "container"),
    field("server", "server (vllm…)"), field("severity", "severity (ERROR…)"),
    el("button", { type: "submit" }, "Search"),
    el("label", {}, el("input", { type: "checkbox", id: "live", checked: p.get("live") === "1" }), " live tail"));
  form.onsubmit = (e) => {
    e.preventDefault();
    const v = (id) => document.getElementById(id).value.trim();
    setHash("/search", {
      q: v("q"), range: v("range"), from: v("range") ? "" : v("from"), to: v("range") ? "" : v("to"),
      namespace: v("namespace"), pod: v("pod"), container: v("container"), server: v("server"),
      severity: v("severity"), live: document.getElementById("live").checked ? "1" : "",
    });
  };
  const help = el("details", { class: "help" }, el("summary", {}, "query syntax"),
    el("div", {}, "Words must all match (", el("code", {}, "kv cache"), "); ids whole or by part (",
      el("code", {}, "chatcmpl-a269fdcb"), ", ", el("code", {}, "a269fdcb"), "); prefixes of 3+ characters (",
      el("code", {}, "chatcmpl-a26*"), ", ", el("code", {}, "k8s.pod.name:vllm-*"), "); phrases in quotes; ",
      el("code", {}, "AND OR NOT -"), " (", el("code", {}, "oom AND NOT k8s.namespace.name:dev"), ", ",
      el("code", {}, "-k8s.container.name:istio-proxy"), "); fields (",
      el("code", {}, "k8s.pod.name:vllm-0"), ", ", el("code", {}, "error.type:cuda_oom"), ", ",
      el("code", {}, "llm.request_id:…"), "), set at all (", el("code", {}, "k8s.node.name:*"), "); numeric ranges (", el("code", {}, "llm.e2e_ms:>5000"), ", ",
      el("code", {}, "http.response.status_code:[500 TO 599]"), ")."));
  const status = el("div", { class: "status", id: "status" });
  const hist = el("div", { id: "histogram" });
  const results = el("table", { id: "results" });
  const more = el("button", { id: "more", hidden: true }, "More");
  const context = el("div", { id: "context" });
  page.replaceChildren(form, help, status, hist, results, more, context);

  const request = searchRequest(p);
  const words = highlightWords(p.get("q"));
  const row = (r) => {
    const sev = r.severity_text || "";
    const rid = r.attributes && r.attributes["llm.request_id"];
    return el("tr", { class: "hit" },
      el("td", { class: "time" }, shortTime(r.timestamp)),
      el("td", { class: "src" }, source(r), el("br"), el("span", { class: "muted" }, r.kind)),
      el("td", { class: "sev-" + sev }, sev),
      el("td", { class: "body" }, highlighted(r.body || "", words),
        rid ? el("div", {}, el("a", { class: "trace-link", href: traceHref(r, rid) }, "trace " + rid)) : null),
      el("td", {}, el("button", { class: "context-button", onclick: () => showContext(r, context) }, "context")));
  };
  try {
    const [page1, buckets] = await Promise.all([
      api("/api/v1/search", { ...request, limit: 100 }),
      api("/api/v1/histogram", request),
    ]);
    status.textContent = page1.total + " records" + (page1.warnings ? " — " + page1.warnings.join("; ") : "");
    const partial = partialNote(page1, buckets);
    if (partial) status.before(partial);
    const bars = filled(buckets);
    chart(hist, "matches per " + buckets.interval, bars.xs, [{ label: "records", values: bars.counts }], true);
    results.replaceChildren(el("tr", {}, el("th", {}, "time"), el("th", {}, "source"), el("th", {}, "level"), el("th", {}, "message"), el("th", {})),
      ...page1.hits.map(row));
    let cursor = page1.next_cursor;
    more.hidden = !cursor;
    more.onclick = async () => {
      const next = await api("/api/v1/search", { ...request, limit: 100, cursor });
      results.append(...next.hits.map(row));
      cursor = next.next_cursor;
      more.hidden = !cursor;
    };
  } catch (e) {
    status.replaceChildren(el("div", { class: "error" }, e.message));
  }
  if (p.get("live") === "1") startTail(request, results, row, status);
}

async function showContext(r, box) {
  const res = r.resource || {};
  const base = { namespace: res["k8s.namespace.name"], pod: res["k8s.pod.name"], container: res["k8s.container.name"] };
  const t = ms(r.timestamp);
  const iso = (x) => new Date(x).toISOString();
  try {
    const [before, after] = await Promise.all([
      api("/api/v1/search", { ...base, to: r.timestamp, limit: 11 }),
      api("/api/v1/search", { ...base, from: r.timestamp, to: iso(t + 5 * 60 * 1000), limit: 1000 }),
    ]);
    const older = before.hits.filter((h) => h.id !== r.id).reverse().slice(-10);
    const newer = after.hits.filter((h) => h.id !== r.id).reverse().slice(0, 10);
    const line = (h, self) => el("tr", { class: self ? "self" : "" }, el("td", { class: "time" }, shortTime(h.timestamp)),
      el("td", { class: "body" }, self ? el("mark", {}, h.body) : h.body));
    box.replaceChildren(el("h3", {}, "Context in " + source(r)),
      el("table", { class: "context" }, older.map((h) => line(h)), line(r, true), newer.map((h) => line(h))));
    box.scrollIntoView();
  } catch (e) {
    box.replaceChildren(el("div", { class: "error" }, e.message));
  }
}

// Live tail over fetch (an EventSource cannot send the token), newest on top. A busy tail
// keeps only the newest MAX_LIVE_ROWS rows (unbounded, a tail of a chatty engine grows the
// page until the tab dies). It says what it cannot show: batches this browser skipped
// (`lagged`), peer aggregators it does not follow (`peer`), and a lost stream, which it
// opens again.
const MAX_LIVE_ROWS = 500;
const TAIL_RETRY_MS = 5000;

function startTail(request, results, row, status) {
  const controller = new AbortController();
  tailAbort = controller;
  const query = new URLSearchParams();
  for (const k of ["q", "namespace", "pod", "container", "kind"]) if (request[k]) query.set(k, request[k]);
  const state = el("span", { id: "tail-state" });
  const lagged = el("span", { id: "tail-lagged", class: "warn" });
  const peerBox = el("span", { id: "tail-peers" });
  status.append(state, lagged, peerBox);
  const peers = new Map();
  let received = 0;
  let skipped = 0;
  let lost = false;
  const showState = (cls, text) => { state.className = cls; state.textContent = " · " + text; };
  const showPeers = () => peerBox.replaceChildren(...[...peers].map(([peer, p]) =>
    el("span", { class: "peer " + p.state, "data-peer": peer, title: p.reason || "" },
      " · peer " + peer + (p.state === "following" ? " followed" : " not followed: " + (p.reason || "unavailable")))));
  // Records oldest first (as they come), shown newest on top in one DOM change; of a burst
  // larger than the table keeps, only the rows it keeps are made.
  const show = (records) => {
    const rows = document.createDocumentFragment();
    for (let i = records.length - 1; i >= Math.max(0, records.length - MAX_LIVE_ROWS); i--) {
      const r = row(records[i]);
      r.classList.add("live");
      rows.append(r);
    }
    const header = results.querySelector("tr");
    header && header.querySelector("th") ? header.after(rows) : results.prepend(rows);
    const live = results.querySelectorAll("tr.live");
    for (let i = MAX_LIVE_ROWS; i < live.length; i++) live[i].remove();
    received += records.length;
    showState("live", "live, " + received + " new" + (received > MAX_LIVE_ROWS ? " (newest " + MAX_LIVE_ROWS + " shown)" : "")
      + (lost ? "; lines written while the tail was lost are not shown, search again for them" : ""));
  };
  const handle = (event, data, records) => {
    if (event === "record") records.push(JSON.parse(data));
    else if (event === "lagged") {
      skipped += JSON.parse(data).skipped_batches || 0;
      lagged.textContent = " · " + skipped + " batches skipped (this browser fell behind; search shows them)";
    } else if (event === "peer") {
      const p = JSON.parse(data);
      peers.set(p.peer, p);
      showPeers();
    }
  };
  const connect = async () => {
    let reason;
    try {
      const response = await fetch("/api/v1/tail?" + query, { headers: headers(), signal: controller.signal });
      if (!response.ok) {
        const body = await response.json().catch(() => ({}));
        if (response.status === 401) askForToken();
        reason = body.detail || response.statusText;
        // A wrong query or token stays wrong: no point in asking again.
        if (response.status === 400 || response.status === 401) {
          showState("failed", "live tail: " + reason);
          return;
        }
      } else {
        peers.clear();
        showPeers();
        showState("live", lost ? "live again; lines written while the tail was lost are not shown, search again for them" : "live");
        const reader = response.body.getReader();
        const decoder = new TextDecoder();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += decoder.decode(value, { stream: true });
          const records = [];
          let end;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const event = (block.match(/^event: ?(.*)$/m) || [])[1];
            const data = (block.match(/^data: ?(.*)$/m) || [])[1];
            if (data) handle(event, data, records);
          }
          if (records.length) show(records);
        }
        reason = "the server ended the stream";
      }
    } catch (e) {
      if (e.name === "AbortError") return;
      reason = e.message;
    }
    if (controller.signal.aborted) return;
    lost = true;
    showState("lost", "live tail lost (" + reason + "); trying again every " + TAIL_RETRY_MS / 1000 + " s");
    setTimeout(() => { if (!controller.signal.aborted) connect(); }, TAIL_RETRY_MS);
  };
  connect();
}

// ---- request trace --------------------------------------------------------------------

async function renderRequest(id, params) {
  page.replaceChildren(el("div", { class: "status" }, "loading request " + id + " …"));
  try {
    const scope = Object.fromEntries(["namespace", "pod", "container", "from", "to"].map((k) => [k, params.get(k)]));
    const t = await api("/api/v1/requests/" + encodeURIComponent(id), scope);
    const s = t.summary;
    const figures = Object.entries(s.figures || {}).map(([k, v]) => el("tr", {}, el("td", {}, k), el("td", {}, fmt(v, 2))));
    const start = ms(s.first_seen);
    const timeline = t.lines.map((r) => el("tr", {},
      el("td", { class: "offset" }, "+" + (ms(r.timestamp) - start) + " ms"),
      el("td", { class: "src" }, source(r), el("br"), el("span", { class: "muted" }, r.kind)),
      el("td", { class: "body" }, r.body)));
    page.replaceChildren(
      el("h2", { id: "request-title" }, "Request " + t.request_id),
      scope.pod || scope.from ? el("div", { class: "muted", id: "request-scope" }, "within "
        + [scope.pod && "pod " + scope.pod, scope.container && "container " + scope.container,
          scope.from && shortTime(scope.from) + " – " + (scope.to ? shortTime(scope.to) : "now")].filter(Boolean).join(", ")
        + " (a number names a request only within one run of one server)") : "",
      partialNote(t) || "",
      el("div", { class: "grid" },
        el("div", { class: "card" }, el("h3", {}, "Summary"),
          el("table", { class: "figures", id: "request-summary" },
            el("tr", {}, el("td", {}, "model"), el("td", {}, s.model || "–")),
            el("tr", {}, el("td", {}, "server"), el("td", {}, s.server || "–")),
            el("tr", {}, el("td", {}, "outcome"), el("td", {}, s.outcome
              || (s.http_status ? "answered (HTTP " + s.http_status + " in the access log; the server logs no end)"
                : "no end logged (still running, or a server that logs none: vLLM v1 without --enable-log-outputs)"))),
            el("tr", {}, el("td", {}, "HTTP status"), el("td", {}, s.http_status || "–")),
            el("tr", {}, el("td", {}, "first seen"), el("td", {}, s.first_seen)),
            el("tr", {}, el("td", {}, "last seen"), el("td", {}, s.last_seen)),
            figures)),
        el("div", { class: "card" }, el("h3", {}, "Containers"), el("ul", {}, t.containers.map((c) => el("li", {}, c))),
          el("h3", {}, "GPU"), el("div", { class: "muted" }, t.gpu ? JSON.stringify(t.gpu.attributes || t.gpu) : "no GPU snapshot near the request"))),
      el("h3", {}, "Timeline across containers"),
      el("table", { class: "timeline", id: "timeline" }, timeline));
  } catch (e) {
    page.replaceChildren(el("div", { class: "error" }, e.message));
  }
}

// ---- incidents ------------------------------------------------------------------------

async function renderIncidents(p) {
  const range = p.get("range") || "24h";
  const select = el("select", { id: "range", onchange: (e) => setHash("/incidents", { range: e.target.value }) },
    RANGES.map((r) => el("option", { value: r, selected: r === range }, "last " + r)));
  page.replaceChildren(el("form", { class: "query" }, select), el("div", { class: "status" }, "loading …"));
  try {
    const body = await api("/api/v1/incidents", { from: "now-" + range });
    const lines = (records, none) => records.length === 0 ? el("div", { class: "muted" }, none)
      : el("table", {}, records.map((r) => el("tr", {},
        el("td", { class: "time" }, shortTime(r.timestamp)), el("td", { class: "src" }, source(r)), el("td", { class: "body" }, r.body))));
    const cards = body.incidents.map((i) => el("div", { class: "card incident", "data-id": i.id },
      el("h3", {}, el("span", { class: "badge " + i.kind }, i.kind), " ", i.pod || "?", " ",
        el("span", { class: "muted" }, shortTime(i.time))),
      el("div", { class: "summary" }, i.summary),
      el("details", { class: "incident-details", open: p.get("open") === i.id },
        el("summary", {}, "what happened: " + i.triggers.length + " triggers, " + i.events.length + " events, last " + i.last_lines.length + " lines"),
        el("h4", {}, "Triggers"), lines(i.triggers, "none"),
        el("h4", {}, "Kubernetes events"), lines(i.events, "none about this pod around it (or no Kubernetes source)"),
        el("h4", {}, "Last lines of " + (i.container || "the container") + " before it"), lines(i.last_lines, "none"))));
    page.replaceChildren(el("form", { class: "query" }, select),
      partialNote(body) || "",
      el("div", { class: "status" }, body.incidents.length + " incidents" + (body.truncated ? " (the oldest may be missing)" : "")),
      cards.length ? el("div", { id: "incidents" }, cards) : el("div", { class: "muted" }, "no crash or failure in this range"));
  } catch (e) {
    page.append(el("div", { class: "error" }, e.message));
  }
}

// ---- LLM dashboard --------------------------------------------------------------------

const FAILED = "(llm.event:request_aborted OR llm.event:request_incomplete OR http.response.status_code:>=500)";

async function renderDashboard(p) {
  const range = p.get("range") || "1h";
  // By pod unless asked: many servers log no model name with a request.
  const groupBy = p.get("group_by") || "pod";
  const go = (changes) => setHash("/dashboard", { range, group_by: groupBy, ...changes });
  const controls = el("form", { class: "query" },
    el("select", { id: "range", onchange: (e) => go({ range: e.target.value }) },
      RANGES.map((r) => el("option", { value: r, selected: r === range }, "last " + r))),
    el("select", { id: "group_by", onchange: (e) => go({ group_by: e.target.value }) },
      ["model", "pod", "namespace", "server"].map((g) => el("option", { value: g, selected: g === groupBy }, "by " + g))));
  const table = el("table", { id: "summary" });
  const charts = el("div", { class: "grid", id: "charts" });
  page.replaceChildren(controls, table, charts);
  const from = "now-" + range;
  // Ended requests, failed ones and arrivals, per bucket from `since`.
  const histograms = (since) => [
    api("/api/v1/histogram", { from: since, kind: "request" }),
    api("/api/v1/histogram", { from: since, kind: "request", q: FAILED }),
    api("/api/v1/histogram", { from: since, kind: "log", q: "llm.event:request_received" }),
  ];
  try {
    const byPod = groupBy === "pod";
    const [summary, requests, errors, arrivals, pods, workloads] = await Promise.all([
      api("/api/v1/llm/summary", { from, group_by: groupBy }),
      ...histograms(from),
      // Each pod's state (phase, restarts, why a container waits) beside its figures.
      byPod ? api("/api/v1/pods").catch(() => ({ pods: [] })) : { pods: [] },
      // The replicas each Deployment, StatefulSet and autoscaler has of what it wants.
      api("/api/v1/workloads").catch(() => ({ workloads: [] })),
    ]);
    const podState = new Map(pods.pods.map((p) => [p.pod, p]));
    const stateCell = (name) => {
      const p = podState.get(name);
      if (!p) return el("td", { class: "pod-state muted" }, "–");
      const waiting = p.containers.find((c) => c.waiting);
      const ended = p.containers.find((c) => c.last_termination);
      const text = waiting ? waiting.waiting : p.phase || "?";
      return el("td", { class: "pod-state" + (waiting || p.phase !== "Running" ? " warn" : ""),
        title: ended ? "last run of " + ended.name + " ended: " + ended.last_termination
          + (ended.last_exit_code !== undefined ? ", exit code " + ended.last_exit_code : "") : "" }, text);
    };
    // Tokens/s from the requests' output tokens; for a server that logs no request end
    // (vLLM v1), from its engines' own count.
    const tokensPerS = (g) => g.output_tokens_per_s > 0 || g.engine_output_tokens_per_s === null
      ? g.output_tokens_per_s : g.engine_output_tokens_per_s;
    // A server that logs no request end, with access lines that time its calls (Ollama,
    // BentoML, an Envoy sidecar): their durations as its latency, what a client waits; and
    // their calls as its requests where its own counters are not scraped.
    const httpTimed = (g) => g.requests_source !== "logged" && g.http_latency_ms.avg !== null;
    const httpOnly = (g) => !g.requests_source && httpTimed(g);
    const latency = (g) => httpTimed(g) ? g.http_latency_ms : g.latency_ms;
    // The engine's own count of running requests, else the average in flight (Little's law).
    const running = (g) => g.running_avg ?? g.in_flight_avg;
    const HTTP_TITLE = "from the HTTP access log's calls: the server logs no request";
    const viaHttp = (text) => text !== "–" ? text + " (HTTP)" : text;
    // A time the server logs no request with (vLLM v1): from its /metrics histogram.
    const SCRAPED_TITLE = "from the server's /metrics histogram: it logs no such time per request";
    const viaScrape = (source, text) => source === "scraped" && text !== "–" ? text + " (scraped)" : text;
    // Requests a server logs no end of (vLLM v1): counted by its /metrics counters.
    const REQUESTS_SCRAPED_TITLE = "from the server's /metrics counters: it logs no request end";
    const requestsTitle = (g) => httpOnly(g) ? HTTP_TITLE : g.requests_source === "scraped" ? REQUESTS_SCRAPED_TITLE : "";
    // The error rate of the requests' ends where logged; else the 5xx share of the access
    // log's calls (what clients saw fail); else the engine's aborted and failed requests.
    const errorRate = (g) => g.requests_source === "logged" ? fmt(100 * g.error_rate) + "%"
      : g.http_error_rate !== null ? fmt(100 * g.http_error_rate) + "% (HTTP 5xx)"
        : g.error_rate !== null ? fmt(100 * g.error_rate) + "% (scraped)" : "–";
    const errorRateTitle = (g) => g.requests_source === "logged" ? ""
      : g.http_error_rate !== null ? "5xx share of the HTTP access log's inference calls: the server logs no request end"
        : g.error_rate !== null ? REQUESTS_SCRAPED_TITLE + " (aborted and failed)" : "";
    // Ended requests and arrivals apart: vLLM v1 logs its requests' arrivals only.
    const cols = ["group", ...(byPod ? ["status", "restarts"] : []), "requests", "rps", "arrivals/s", "error rate", "p50 ms", "p95 ms", "p99 ms", "TTFT p95", "queue p95",
      "tokens/s", "running", "KV %", "GPU util %", "GPU mem"];
    table.replaceChildren(el("tr", {}, cols.map((c) => el("th", {}, c))),
      ...summary.groups.map((g) => el("tr", { class: "group" },
        el("td", {}, g.group),
        byPod ? [stateCell(g.group), el("td", { class: "restarts" }, podState.has(g.group) ? podState.get(g.group).restarts : "–")] : [],
        el("td", { class: "requests", title: requestsTitle(g) },
          httpOnly(g) ? viaHttp(String(g.http_responses)) : viaScrape(g.requests_source, String(g.requests))),
        el("td", { class: "rps", title: requestsTitle(g) },
          httpOnly(g) ? viaHttp(fmt(g.http_rps, 3)) : viaScrape(g.requests_source, fmt(g.rps, 3))),
        el("td", { class: "arrivals" }, g.received ? fmt(g.received_rps, 3) : "–"),
        el("td", { class: "error-rate", title: errorRateTitle(g) }, errorRate(g)),
        ["p50", "p95", "p99"].map((p) => el("td", { class: "latency-" + p,
          title: httpTimed(g) ? HTTP_TITLE : g.latency_source === "scraped" ? SCRAPED_TITLE : "" },
          httpTimed(g) ? viaHttp(fmt(latency(g)[p], 0)) : viaScrape(g.latency_source, fmt(latency(g)[p], 0)))),
        el("td", { class: "ttft", title: g.ttft_source === "scraped" ? SCRAPED_TITLE : "" },
          viaScrape(g.ttft_source, fmt(g.ttft_ms.p95, 0))),
        el("td", { class: "queue", title: g.queue_source === "scraped" ? SCRAPED_TITLE : "" },
          viaScrape(g.queue_source, fmt(g.queue_ms.p95, 0))),
        el("td", { class: "tokens", title: tokensPerS(g) !== g.output_tokens_per_s
          ? "from the engine's throughput lines: the server logs no request end" : "" },
          tokensPerS(g) !== g.output_tokens_per_s ? fmt(tokensPerS(g)) + " (engine)" : fmt(g.output_tokens_per_s)),
        el("td", { class: "running", title: g.running_avg === null && g.in_flight_avg !== null
          ? "average requests in flight: the time the ended requests took ÷ the range (the engine logs no count)" : "" },
          fmt(running(g)) + (g.running_avg === null && g.in_flight_avg !== null ? " (in flight)" : "")),
        el("td", {}, fmt(g.kv_cache_pct_avg)),
        el("td", {}, fmt(g.gpu_utilization_pct_avg)), el("td", {}, fmt(g.gpu_memory_used_bytes_avg)))));
    // Replica counts, those short of what they want first: a rollout that never became
    // ready, an autoscaler that cannot get the pods it asks for.
    // A cluster of many: every one short, and the rest only while few (else counted).
    const short = (w) => w.ready < w.desired;
    const replicas = [...workloads.workloads].sort((a, b) => short(b) - short(a));
    const shown = replicas.length <= 12 ? replicas : replicas.filter(short);
    if (replicas.length) {
      const words = (w) => w.kind === "HorizontalPodAutoscaler"
        ? "autoscaler " + w.name + ": wants " + w.desired + ", has " + w.ready + " (max " + w.available + ")"
        : w.kind.toLowerCase() + " " + w.name + ": " + w.ready + "/" + w.desired + " ready";
      const rest = replicas.length - shown.length;
      table.after(el("div", { class: "workloads", id: "workloads" }, "replicas: ",
        shown.map((w) => el("span", { class: "workload" + (short(w) ? " warn" : ""), "data-name": w.name,
          "data-kind": w.kind, title: (w.namespace || "") + ", as of " + shortTime(w.updated) }, words(w))),
        rest ? el("span", { class: "workload" }, rest + (shown.length ? " more" : " workloads") + " with every replica ready") : ""));
    }
    // The index began after the range did (a new install, or retention dropped the rest):
    // the rates are per second of what it holds, and say so.
    if (summary.data_from && ms(summary.data_from) > ms(summary.from) + 1000) {
      table.after(el("div", { class: "muted", id: "rates-note" },
        "Rates are per second of the " + spanText(summary.rate_seconds) + " the index holds of this range (its data begins "
          + shortTime(summary.data_from) + "), and the charts show that part."));
    }
    // A pod in trouble before it logged a figure (crash-looping, pending) has no group, and
    // is the one to see first: those of the namespaces shown get a row of their own.
    if (byPod) {
      const shown = new Set(summary.groups.map((g) => g.group));
      const namespaces = new Set(pods.pods.filter((p) => shown.has(p.pod)).map((p) => p.namespace));
      const troubled = pods.pods.filter((p) => !shown.has(p.pod) && namespaces.has(p.namespace)
        && (p.containers.some((c) => c.waiting) || !["Running", "Succeeded"].includes(p.phase)));
      table.append(...troubled.map((p) => el("tr", { class: "group troubled" },
        el("td", {}, p.pod), stateCell(p.pod), el("td", { class: "restarts" }, p.restarts),
        cols.slice(3).map(() => el("td", { class: "muted" }, "–")))));
    }
    // A new install (or retention shorter than the range): the charts cover the part of the
    // range the index holds, not a range that is empty but for its last few pixels.
    const end = Date.now();
    const span = { "15m": 9e5, "1h": 36e5, "6h": 216e5, "24h": 864e5, "7d": 6048e5 }[range];
    const dataFrom = summary.data_from ? ms(summary.data_from) : null;
    const start = dataFrom !== null && dataFrom > end - span * 0.9 ? dataFrom : end - span;
    let [hRequests, hErrors, hArrivals] = [requests, errors, arrivals];
    if (start !== end - span) {
      const since = new Date(start).toISOString();
      [hRequests, hErrors, hArrivals] = await Promise.all(histograms(since));
      charts.dataset.from = since;
    }
    // Latency, TTFT and load over the range: the summary of each of 12 slices.
    const width = end - start;
    const slices = [...Array(12).keys()].map((i) => [start + (i * width) / 12, start + ((i + 1) * width) / 12]);
    const parts = await Promise.all(slices.map(([a, b]) => api("/api/v1/llm/summary", {
      from: new Date(a).toISOString(), to: new Date(b).toISOString(), group_by: groupBy })));
    const partial = partialNote(summary, hRequests, hErrors, hArrivals, pods, ...parts);
    if (partial) table.before(partial);
    const groups = [...new Set(parts.flatMap((s) => s.groups.map((g) => g.group)))];
    const sliceXs = slices.map(([a, b]) => (a + b) / 2);
    if (summary.groups.some((g) => g.requests_source === "scraped")) {
      // A server that logs no request end (vLLM v1, SGLang) is counted by its own counters
      // on /metrics: the histogram of logged ends would chart none of its requests, so the
      // rates are each slice's summary, every group's however it is known.
      const perSlice = (pick) => parts.map((s) => s.rate_seconds > 0
        ? s.groups.reduce((sum, g) => sum + pick(g, s), 0) : null);
      const title = "(per " + spanText(width / 12000) + "; some servers' by their /metrics)";
      chart(charts, "requests/s " + title, sliceXs,
        [{ label: "ended/s", values: perSlice((g) => g.rps) },
          { label: "arrived/s", values: perSlice((g) => g.received_rps) }]);
      chart(charts, "failed requests/s " + title, sliceXs,
        [{ label: "failed/s", values: perSlice((g, s) => g.errors / s.rate_seconds) }]);
    } else {
      const step = hRequests.interval_ms / 1000;
      const all = filled(hRequests);
      const failed = filled(hErrors);
      const arrived = filled({ ...hArrivals, interval_ms: hRequests.interval_ms, from: hRequests.from, to: hRequests.to });
      chart(charts, "requests/s (per " + hRequests.interval + ")", all.xs,
        [{ label: "ended/s", values: all.counts.map((c) => c / step) },
          { label: "arrived/s", values: arrived.counts.map((c) => c / step) }], true);
      chart(charts, "failed requests/s", failed.xs,
        [{ label: "failed/s", values: failed.counts.map((c) => c / step) }], true);
    }
    const seriesOf = (pick) => groups.map((name) => ({
      label: name, values: parts.map((s) => { const g = s.groups.find((x) => x.group === name); return g ? pick(g) : null; }) }));
    chart(charts, "p95 latency (ms)", sliceXs, seriesOf((g) => latency(g).p95));
    chart(charts, "p95 time to first token (ms)", sliceXs, seriesOf((g) => g.ttft_ms.p95));
    chart(charts, "output tokens/s", sliceXs, seriesOf(tokensPerS));
    chart(charts, "running requests (avg)", sliceXs, seriesOf(running));
    chart(charts, "GPU utilization % (avg)", sliceXs, seriesOf((g) => g.gpu_utilization_pct_avg), false,
      "no GPU figures in this range: no NVML or dcgm-exporter source gave any (see the header)");
  } catch (e) {
    page.append(el("div", { class: "error" }, e.message));
  }
}

// ---- pipeline health (header) ---------------------------------------------------------

// While the pipeline is down, the header is refreshed every 2 s (else every 15 s), so that
// its countdown and its coming back show.
let healthRetry = null;

// Each source and sink with its state, so a broker that is down, an index whose disk is
// under its floor, or a scrape target that fails shows on every page (its words on hover),
// not only in the logs.
async function refreshHealth() {
  const box = document.getElementById("health");
  try {
    const status = await api("/api/v1/status");
    const parts = [...status.sources, ...(status.sinks || [])];
    // A pipeline that failed and started again began its sources and sinks afresh: its
    // failure shows here for a quarter of an hour; while it waits to start again, that it is
    // down (and the API has no sources, sinks or index to show).
    const r = status.restarts;
    const down = r && r.next_try_in_s !== undefined;
    const restarted = r && (down || r.seconds_ago < 900) ? [el("span",
      { class: "component failing", title: "last failure, " + r.seconds_ago + " s ago: " + r.last_failure, "data-id": "restarts" },
      down ? "pipeline down, starts again in " + r.next_try_in_s + " s" : "pipeline restarted " + r.count + "×")] : [];
    if (down && !healthRetry) healthRetry = setTimeout(() => { healthRetry = null; refreshHealth(); }, 2000);
    box.replaceChildren(...restarted, ...parts.map((c) => el("span",
      { class: "component " + c.state, title: c.kind + ": " + c.detail, "data-id": c.id },
      c.state === "ok" ? c.id : c.id + " " + c.state)));
  } catch (e) {
    box.replaceChildren(el("span", { class: "component failing", title: e.message }, "status unknown"));
  }
}

// ---- routing --------------------------------------------------------------------------

function route() {
  if (tailAbort) { tailAbort.abort(); tailAbort = null; }
  const { path, params } = hashParams();
  const name = path.split("/")[1] || "search";
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.dataset.page === name);
  if (name === "request") return renderRequest(decodeURIComponent(path.split("/").slice(2).join("/")), params);
  if (name === "incidents") return renderIncidents(params);
  if (name === "dashboard") return renderDashboard(params);
  return renderSearch(params);
}

window.addEventListener("hashchange", route);
route();
refreshHealth();
setInterval(refreshHealth, 15000);
