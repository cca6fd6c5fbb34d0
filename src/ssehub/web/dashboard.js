/* The dashboard: GET dashboard/recent fills the charts, then the shared stream of the topic ssehub/stats
 * (../ssehub.js: one connection for every tab of the browser). */
import "./demo.js";

(function () {
  "use strict";
  const { el, live, json, lineChart, number } = window.SSEHub;
  const CAPACITY = 120; /* samples kept */
  const SLOTS = 60; /* the charts' width in samples until more have come */
  const badge = document.getElementById("conn");
  const series = { published: [], delivered: [], streams: [] };
  const MAX_NUMBER = 1e12; /* larger than any real count or rate */
  const MAX_TOPICS = 100; /* the feed sends its top 12 */
  const NUMBERS = ["open_streams", "watchers", "published", "delivered", "published_rate", "delivered_rate", "opened", "replayed", "resets", "slow_closes"];
  const TOPIC_NUMBERS = ["subscribers", "published", "delivered", "rate"];
  let boot = null;
  let seen = new Set(); /* sample numbers of this boot already drawn (bounded) */
  let latest = null;
  let queued = false;

  function text(id, value) {
    document.getElementById(id).textContent = value;
  }

  function push(list, value) {
    list.push(value);
    if (list.length > CAPACITY) list.shift();
  }

  function count(v) {
    return typeof v === "number" && Number.isFinite(v) && v >= 0 && v <= MAX_NUMBER;
  }

  /* Anyone may publish to ssehub/stats: a sample of the wrong shape, with strings or absurd
   * numbers, is skipped, never drawn (it used to break every open dashboard). */
  function valid(s) {
    if (!s || typeof s !== "object" || Array.isArray(s)) return false;
    if (!Number.isSafeInteger(s.n) || s.n < 1 || s.n > MAX_NUMBER) return false;
    if (typeof s.boot !== "string" || !/^[0-9a-z]{1,32}$/i.test(s.boot)) return false;
    if (!NUMBERS.every((k) => count(s[k]))) return false;
    if (!Array.isArray(s.topics) || s.topics.length > MAX_TOPICS) return false;
    return s.topics.every(
      (t) => t && typeof t === "object" && typeof t.topic === "string" && t.topic.length <= 1000 && TOPIC_NUMBERS.every((k) => count(t[k])),
    );
  }

  function onStats(s) {
    if (!valid(s)) return;
    if (s.boot !== boot) {
      /* the first sample, or another process: the hub restarted (or another node) */
      boot = s.boot;
      seen = new Set();
      text("node", `· hub ${s.boot}`);
    }
    /* drop a sample already drawn (replayed twice); never wait for a number that a forged
     * sample pushed ahead */
    if (seen.has(s.n)) return;
    seen.add(s.n);
    if (seen.size > CAPACITY * 2) seen.delete(seen.values().next().value);
    latest = s;
    push(series.published, s.published_rate);
    push(series.delivered, s.delivered_rate);
    push(series.streams, s.open_streams);
    schedule();
  }

  function schedule() {
    if (queued) return;
    queued = true;
    requestAnimationFrame(draw);
  }

  function draw() {
    queued = false;
    const s = latest;
    if (!s) return;
    text("k-streams", number(s.open_streams));
    text("k-watchers", `其中仪表盘 ${s.watchers} dashboards`);
    text("k-prate", number(s.published_rate, 1));
    text("k-published", `共 ${number(s.published)} total`);
    text("k-drate", number(s.delivered_rate, 1));
    text("k-delivered", `共 ${number(s.delivered)} total`);
    text("k-opened", number(s.opened));
    text("k-other", `replayed ${number(s.replayed)} · resets ${number(s.resets)} · slow ${number(s.slow_closes)}`);
    lineChart(
      document.getElementById("chart-rates"),
      [
        { values: series.published, color: "#4f5bd5", fill: true },
        { values: series.delivered, color: "#14a05a" },
      ],
      { min: 0, capacity: SLOTS, format: (v) => v.toFixed(v < 10 ? 1 : 0) },
    );
    lineChart(
      document.getElementById("chart-streams"),
      [{ values: series.streams, color: "#b06ab3", fill: true }],
      { min: 0, integer: true, capacity: SLOTS, format: (v) => v.toFixed(0) },
    );
    const body = document.getElementById("topics");
    const max = Math.max(1, ...s.topics.map((t) => t.rate));
    const rows = s.topics.map((t) =>
      el(
        "tr",
        { dataset: { topic: t.topic } },
        el("td", { class: "topic" }, t.topic),
        el("td", { class: "num subscribers" }, number(t.subscribers)),
        el("td", { class: "num published" }, number(t.published)),
        el("td", { class: "num delivered" }, number(t.delivered)),
        el(
          "td",
          { class: "num rate" },
          el("div", { class: "cell" }, el("div", { class: "bar", style: { width: `${Math.round((t.rate / max) * 80)}px` } }), number(t.rate, 1)),
        ),
      ),
    );
    body.replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { colspan: 5, class: "muted" }, "还没有主题 no topics yet"))]));
  }
  window.addEventListener("resize", schedule);

  async function start() {
    try {
      const recent = await json("dashboard/recent");
      for (const s of recent.samples) onStats(s);
    } catch (err) {
      /* the stream below fills the charts as samples arrive */
    }
    live(null, { topics: ["ssehub/stats"], badge, events: { stats: onStats } });
  }

  start();
})();
