/* The landing page: show this hub's own address in the examples, and whether it is healthy. */
(function () {
  "use strict";
  const base = new URL(".", document.baseURI).toString().replace(/\/$/, "");
  for (const span of document.querySelectorAll(".origin")) span.textContent = base;
  const health = document.getElementById("health");
  async function check() {
    try {
      const info = await window.SSEHub.json("healthz");
      health.dataset.state = info.status === "ok" ? "open" : "reconnecting";
      health.textContent = `hub ${info.status} · ${info.open_streams} streams`;
    } catch (err) {
      health.dataset.state = "reconnecting";
      health.textContent = "hub unreachable";
    }
  }
  check();
  setInterval(check, 5000);
})();
