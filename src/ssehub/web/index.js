/* The landing page: show this hub's own address in the examples, and whether it is healthy.
 * The open-stream count comes live from the topic ssehub/stats over the shared stream of
 * ../ssehub.js (one connection for all the tabs); GET healthz fills in until it does, and every
 * 5 s when the stats feed is not open (it is private on a hub with a key). */
import "./demo.js";

(function () {
  "use strict";
  const { live, json } = window.SSEHub;
  const base = new URL(".", document.baseURI).toString().replace(/\/$/, "");
  for (const span of document.querySelectorAll(".origin")) span.textContent = base;
  const health = document.getElementById("health");
  let stream = null;

  function show(state, text) {
    health.dataset.state = state;
    health.textContent = text;
  }

  async function check() {
    if (stream && stream.state === "open") return;
    try {
      const info = await json("healthz");
      show(info.status === "ok" ? "open" : "reconnecting", `hub ${info.status} · ${info.open_streams} streams`);
    } catch (err) {
      show("reconnecting", "hub unreachable");
    }
  }

  function onStats(sample) {
    const n = sample && sample.open_streams;
    if (Number.isSafeInteger(n) && n >= 0) show("open", `hub ok · ${n} streams`);
  }

  check();
  setInterval(check, 5000);
  stream = live(null, { topics: ["ssehub/stats"], events: { stats: onStats }, onFail: () => false });
})();
