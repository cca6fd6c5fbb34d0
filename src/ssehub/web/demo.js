/* demo.js: the helper every demo page shares, an ES module on /ssehub.js (no build step).
 *
 *   SSEHub.live(url, {events: {name: (data, e) => …}, lastEventId, badge, onOpen, onState,
 *                     onFail, topics, native}) -> {close(), lastEventId, source, state}
 *
 * opens one stream with the hub's browser client (../ssehub.js):
 *  - `topics: [...]`: subscribe() to those hub topics, shared by every tab of this origin
 *    (one connection for the browser); `url` is then unused;
 *  - else a HubEventSource on `url` (a fetch-based stream: it resumes with Last-Event-ID,
 *    honours retry: and backs off with jitter by itself);
 *  - `native: true` uses the browser's own EventSource instead (the seed's test.html).
 * The badge element shows the connection state: connecting, open, reconnecting, closed.
 * If the source closes for good (an HTTP error such as 404), onFail(status) may return false
 * (or a promise of false) to stop; otherwise a new source is opened from the last event id
 * after an exponential backoff with jitter (1 s … 30 s).
 * Handlers receive the data parsed as JSON when it is JSON, else the string.
 * Text is always put in the page with textContent (SSEHub.el), never innerHTML.
 */
import { HubEventSource, subscribe } from "../ssehub.js";

const LABELS = {
  idle: "空闲 idle",
  connecting: "连接中 connecting",
  open: "已连接 open",
  reconnecting: "重连中 reconnecting",
  closed: "已关闭 closed",
};

function setBadge(badge, state) {
  if (!badge) return;
  badge.dataset.state = state;
  badge.textContent = LABELS[state] || state;
}

function withParam(url, name, value) {
  const u = new URL(url, document.baseURI);
  if (value === null || value === undefined || value === "") u.searchParams.delete(name);
  else u.searchParams.set(name, value);
  return u.toString();
}

function parse(text) {
  try {
    return JSON.parse(text);
  } catch (err) {
    return text;
  }
}

/* While the page unloads its streams break: that is not an error to show or to save. */
let unloading = false;
window.addEventListener("pagehide", () => {
  unloading = true;
});
window.addEventListener("pageshow", () => {
  unloading = false;
});

function open(url, opts, lastEventId) {
  if (opts.topics) return subscribe(opts.topics, { hub: new URL(".", document.baseURI).toString(), lastEventId });
  if (opts.native) return new EventSource(withParam(url, "last_event_id", lastEventId));
  return new HubEventSource(url, { lastEventId });
}

function live(url, options) {
  const opts = options || {};
  const events = opts.events || {};
  let source = null;
  let timer = null;
  let attempt = 0;
  let closed = false;
  let opened = false;
  const handle = {
    lastEventId: opts.lastEventId || "",
    state: "connecting",
    get source() {
      return source;
    },
    close() {
      closed = true;
      if (timer) clearTimeout(timer);
      timer = null;
      if (source) source.close();
      state("closed");
    },
  };

  function state(s) {
    handle.state = s;
    setBadge(opts.badge, s);
    if (opts.onState) opts.onState(s);
  }

  function listen(name, fn) {
    source.addEventListener(name, (e) => {
      /* the source's own "error" (a plain Event) is not a server event named "error" */
      if (!(e instanceof MessageEvent) || unloading) return;
      if (e.lastEventId) handle.lastEventId = e.lastEventId;
      if (fn) fn(parse(e.data), e);
    });
  }

  function connect() {
    timer = null;
    if (closed) return;
    state(opened ? "reconnecting" : "connecting");
    if (source) source.close();
    source = open(url, opts, handle.lastEventId);
    const mine = source;
    source.addEventListener("open", () => {
      if (mine !== source) return;
      const again = opened;
      opened = true;
      attempt = 0;
      state("open");
      if (opts.onOpen) opts.onOpen(again);
    });
    source.addEventListener("error", (e) => {
      if (e instanceof MessageEvent || mine !== source || closed || unloading) return;
      state("reconnecting");
      if (source.readyState !== 2) return; /* the source reconnects by itself */
      Promise.resolve(opts.onFail ? opts.onFail(e.status || 0) : true).then((retry) => {
        if (closed || mine !== source) return;
        if (retry === false) {
          handle.close();
          return;
        }
        const delay = Math.min(30000, 1000 * 2 ** attempt) * (0.5 + Math.random() / 2);
        attempt += 1;
        timer = setTimeout(connect, delay);
      });
    });
    for (const name of Object.keys(events)) listen(name, events[name]);
    if (!events["ssehub-reset"]) listen("ssehub-reset", null);
  }

  connect();
  return handle;
}

/* el("div", {class: "x", dataset: {a: 1}}, "text", child, …): build DOM safely. */
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "style") Object.assign(node.style, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

async function json(url, init) {
  const response = await fetch(url, init);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const err = new Error(body.message || `HTTP ${response.status}`);
    err.status = response.status;
    err.body = body;
    throw err;
  }
  return body;
}

function time(seconds) {
  const d = seconds ? new Date(seconds * 1000) : new Date();
  return d.toLocaleTimeString("zh-CN", { hour12: false });
}

function number(n, digits) {
  if (n === null || n === undefined || Number.isNaN(n)) return "–";
  return Number(n).toLocaleString("en-US", {
    minimumFractionDigits: digits || 0,
    maximumFractionDigits: digits || 0,
  });
}

/* lineChart(canvas, [{values, color, width, fill}], {min, max, format, capacity, axis, integer}):
 * the x axis holds max(capacity, points) points, the newest at the right edge;
 * a plain canvas line chart scaled for the device pixel ratio; `integer` puts the grid lines on
 * whole numbers. The canvas's data-points attribute says how many points it shows. */
function lineChart(canvas, series, options) {
  const opts = options || {};
  const dpr = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || 600;
  const height = canvas.clientHeight || 200;
  if (canvas.width !== Math.round(width * dpr) || canvas.height !== Math.round(height * dpr)) {
    canvas.width = Math.round(width * dpr);
    canvas.height = Math.round(height * dpr);
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, width, height);
  const styles = getComputedStyle(document.body);
  const muted = styles.getPropertyValue("--muted").trim() || "#888";
  const border = styles.getPropertyValue("--border").trim() || "#ddd";
  const all = series.flatMap((s) => s.values).filter((v) => Number.isFinite(v));
  let points = 0;
  for (const s of series) points = Math.max(points, s.values.length);
  canvas.dataset.points = String(points);
  const pad = { left: opts.axis === false ? 4 : 52, right: 8, top: 8, bottom: 8 };
  if (!all.length) {
    ctx.fillStyle = muted;
    ctx.font = `13px ${styles.fontFamily}`;
    ctx.fillText(opts.empty || "等待数据 waiting for data…", pad.left + 4, height / 2);
    return;
  }
  let lo = opts.min !== undefined ? Math.min(opts.min, ...all) : Math.min(...all);
  let hi = opts.max !== undefined ? Math.max(opts.max, ...all) : Math.max(...all);
  if (hi === lo) {
    hi += Math.abs(hi) * 0.01 || 1;
    lo -= Math.abs(lo) * 0.01 || (opts.min === 0 ? 0 : 1);
  }
  if (opts.integer) {
    lo = Math.floor(lo);
    hi = lo + Math.max(4, Math.ceil((Math.ceil(hi) - lo) / 4) * 4);
  } else {
    const span = hi - lo;
    hi += span * 0.08;
    if (opts.min === undefined) lo -= span * 0.08;
  }
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const n = Math.max(points, opts.capacity || 2);
  const x = (i, len) => pad.left + plotW * ((n - len + i) / Math.max(n - 1, 1));
  const y = (v) => pad.top + plotH * (1 - (v - lo) / (hi - lo));
  if (opts.axis !== false) {
    ctx.strokeStyle = border;
    ctx.fillStyle = muted;
    ctx.lineWidth = 1;
    ctx.font = `11px ${styles.fontFamily}`;
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    for (let i = 0; i <= 4; i++) {
      const v = lo + ((hi - lo) * i) / 4;
      const yy = Math.round(y(v)) + 0.5;
      ctx.beginPath();
      ctx.moveTo(pad.left, yy);
      ctx.lineTo(width - pad.right, yy);
      ctx.stroke();
      ctx.fillText(opts.format ? opts.format(v) : v.toFixed(1), pad.left - 6, yy);
    }
  }
  for (const s of series) {
    const vals = s.values;
    if (!vals.length) continue;
    ctx.beginPath();
    vals.forEach((v, i) => (i ? ctx.lineTo(x(i, vals.length), y(v)) : ctx.moveTo(x(i, vals.length), y(v))));
    ctx.strokeStyle = s.color;
    ctx.lineWidth = s.width || 2;
    ctx.lineJoin = "round";
    ctx.stroke();
    if (s.fill) {
      ctx.lineTo(x(vals.length - 1, vals.length), pad.top + plotH);
      ctx.lineTo(x(0, vals.length), pad.top + plotH);
      ctx.closePath();
      const gradient = ctx.createLinearGradient(0, pad.top, 0, pad.top + plotH);
      gradient.addColorStop(0, s.color + "40");
      gradient.addColorStop(1, s.color + "00");
      ctx.fillStyle = gradient;
      ctx.fill();
    }
  }
}

function cssColor(name, fallback) {
  return getComputedStyle(document.body).getPropertyValue(name).trim() || fallback;
}

/* Mark the current page in the top bar's navigation. */
document.addEventListener("DOMContentLoaded", () => {
  const here = location.pathname.replace(/\/+$/, "").split("/").pop() || "";
  for (const a of document.querySelectorAll(".nav a")) {
    const target = (a.getAttribute("href") || "").replace(/^\.\//, "");
    if (target === here) a.classList.add("active");
  }
});

export const SSEHub = { live, el, json, time, number, lineChart, cssColor, setBadge, withParam, parse };
window.SSEHub = Object.assign(window.SSEHub || {}, SSEHub); // markdown.js adds renderMarkdown
