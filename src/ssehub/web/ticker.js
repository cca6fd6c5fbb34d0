/* The ticker page: one HubEventSource (../ssehub.js) on ticker/events?symbol=A&symbol=B…, cards + a chart.
 * ?symbols=FOO,BAR adds symbols published by other programs. */
import "./demo.js";

(function () {
  "use strict";
  const { el, live, json, lineChart, number, time, cssColor } = window.SSEHub;
  const CAPACITY = 120; /* points kept per symbol */
  const SLOTS = 40; /* the chart's width in points until more have come */
  const cards = document.getElementById("cards");
  const badge = document.getElementById("conn");
  const chart = document.getElementById("chart");
  const colors = document.getElementById("colors");
  const quotes = new Map();
  let selected = localStorage.getItem("ssehub.ticker.selected");
  let drawQueued = false;

  function applyColors() {
    const redUp = localStorage.getItem("ssehub.ticker.redUp") === "1";
    document.body.classList.toggle("red-up", redUp);
    colors.textContent = redUp ? "红涨绿跌 ✓" : "红涨绿跌";
    scheduleDraw();
  }
  colors.addEventListener("click", () => {
    const redUp = localStorage.getItem("ssehub.ticker.redUp") === "1";
    localStorage.setItem("ssehub.ticker.redUp", redUp ? "0" : "1");
    applyColors();
  });

  function quote(symbol, name) {
    let q = quotes.get(symbol);
    if (q) {
      if (name && !q.name) {
        q.name = name;
        q.nameEl.textContent = name;
      }
      return q;
    }
    q = { symbol, name: name || "", price: null, open: null, history: [] };
    q.priceEl = el("span", { class: "price" }, "–");
    q.changeEl = el("span", { class: "change muted" }, "等待报价 waiting");
    q.nameEl = el("span", { class: "name" }, q.name);
    q.spark = el("canvas", { class: "spark", "aria-hidden": "true" });
    q.card = el(
      "button",
      { type: "button", class: "quote", dataset: { symbol }, onclick: () => select(symbol) },
      el("div", { class: "row" }, el("span", { class: "sym" }, symbol), q.nameEl),
      el("div", { class: "row" }, q.priceEl),
      el("div", { class: "row" }, q.changeEl),
      q.spark,
    );
    cards.append(q.card);
    quotes.set(symbol, q);
    return q;
  }

  function select(symbol) {
    selected = symbol;
    localStorage.setItem("ssehub.ticker.selected", symbol);
    for (const q of quotes.values()) q.card.classList.toggle("selected", q.symbol === symbol);
    scheduleDraw();
  }

  /* ticker/events labels each event with the topic it was published to:
   * {"topic": "ticker/AAPL", "data": "<the published data>"}. The symbol is the topic's, never
   * data.symbol (anyone allowed to publish to ticker/AAPL could otherwise move MSFT). */
  function onLabelled(event) {
    if (!event || typeof event.topic !== "string" || !event.topic.startsWith("ticker/")) return;
    const symbol = event.topic.slice("ticker/".length);
    if (!quotes.has(symbol) || typeof event.data !== "string") return;
    onPrice(symbol, window.SSEHub.parse(event.data));
  }

  function onPrice(symbol, data) {
    if (!data || typeof data !== "object") return;
    const price = Number(data.price);
    if (!Number.isFinite(price)) return;
    const q = quote(symbol, typeof data.name === "string" ? data.name : "");
    const before = q.price;
    q.price = price;
    if (q.open === null) q.open = Number.isFinite(Number(data.open)) && data.open !== undefined ? Number(data.open) : price;
    q.history.push(price);
    if (q.history.length > CAPACITY) q.history.shift();
    q.time = data.time;
    const tick = before === null ? 0 : price - before;
    const day = price - q.open;
    const pct = q.open ? (day / q.open) * 100 : 0;
    q.priceEl.textContent = number(price, 2);
    q.priceEl.classList.remove("flash-up", "flash-down");
    if (tick) {
      void q.priceEl.offsetWidth; /* restart the flash animation */
      q.priceEl.classList.add(tick > 0 ? "flash-up" : "flash-down");
    }
    q.changeEl.className = `change ${day > 0 ? "up" : day < 0 ? "down" : "muted"}`;
    q.changeEl.textContent = `${day >= 0 ? "▲" : "▼"} ${number(Math.abs(day), 2)} (${pct >= 0 ? "+" : "−"}${number(Math.abs(pct), 2)}%)`;
    q.card.dataset.direction = day > 0 ? "up" : day < 0 ? "down" : "flat";
    document.getElementById("updated").textContent = `更新于 updated ${time(data.time)}`;
    scheduleDraw();
  }

  function scheduleDraw() {
    if (drawQueued) return;
    drawQueued = true;
    requestAnimationFrame(draw);
  }

  function draw() {
    drawQueued = false;
    const up = cssColor("--up-color", "#14a05a");
    const down = cssColor("--down-color", "#e0413a");
    for (const q of quotes.values()) {
      const color = q.price !== null && q.open !== null && q.price < q.open ? down : up;
      lineChart(q.spark, [{ values: q.history, color, width: 1.5, fill: true }], {
        axis: false,
        capacity: SLOTS,
        empty: "",
      });
    }
    const q = quotes.get(selected);
    if (!q) return;
    document.getElementById("chart-title").textContent = `${q.symbol} ${q.name}`;
    const priceEl = document.getElementById("chart-price");
    priceEl.textContent = q.price === null ? "" : number(q.price, 2);
    const color = q.price !== null && q.open !== null && q.price < q.open ? down : up;
    priceEl.className = `chart-price ${color === down ? "down" : "up"}`;
    lineChart(chart, [{ values: q.history, color, fill: true }], {
      capacity: SLOTS,
      format: (v) => v.toFixed(2),
    });
  }
  window.addEventListener("resize", scheduleDraw);

  function extraSymbols() {
    const raw = new URLSearchParams(location.search).get("symbols") || "";
    return raw
      .split(",")
      .map((s) => s.trim())
      .filter((s) => /^[A-Za-z0-9._-]{1,20}$/.test(s))
      .slice(0, 40); /* the stream takes at most 50 symbols */
  }

  async function start(attempt) {
    let info;
    try {
      info = await json("ticker/symbols");
    } catch (err) {
      window.SSEHub.setBadge(badge, "reconnecting");
      setTimeout(() => start(attempt + 1), Math.min(10000, 1000 * 2 ** attempt));
      return;
    }
    const symbols = info.symbols.map((s) => s.symbol);
    for (const s of info.symbols) quote(s.symbol, s.name);
    for (const s of extraSymbols()) {
      if (!symbols.includes(s)) {
        symbols.push(s);
        quote(s, "");
      }
    }
    select(quotes.has(selected) ? selected : symbols[0]);
    const query = symbols.map((s) => `symbol=${encodeURIComponent(s)}`).join("&");
    document.getElementById("note").textContent = info.publisher
      ? `内置发布器每 ${info.interval} 秒更新一次 · built-in publisher every ${info.interval} s`
      : "内置发布器已关闭（--no-ticker）：等待其他程序发布 · waiting for other publishers";
    live(`ticker/events?${query}`, {
      badge,
      lastEventId: info.since,
      events: { price: onLabelled },
    });
  }

  applyColors();
  start(0);
})();
