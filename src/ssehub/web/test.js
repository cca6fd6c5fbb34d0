/* The seed's test.html, with the seed's four listeners on the demo stream (GET /). */
import "./demo.js";

(function () {
  "use strict";
  const { el, live } = window.SSEHub;
  const output = document.getElementById("output");
  const summary = document.getElementById("summary");
  const badge = document.getElementById("conn");
  const again = document.getElementById("again");
  const ICONS = { connected: "✓", thinking: "…", content: "¶", done: "■", note: "↻" };
  let stream = null;
  let started = 0;
  let count = 0;

  function show(type, text, cls) {
    count += 1;
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    output.append(
      el(
        "li",
        { class: cls || type, dataset: { type } },
        el("span", { class: "icon" }, ICONS[type] || "•"),
        el("span", { class: "type" }, type),
        el("span", { class: "text" }, text),
        el("span", { class: "at" }, `+${seconds}s`),
      ),
    );
    summary.textContent = `${count} 个事件 events`;
  }

  function run() {
    if (stream) stream.close();
    output.replaceChildren();
    count = 0;
    started = performance.now();
    summary.textContent = "";
    stream = live("./", {
      native: true /* the seed's page keeps the browser's own EventSource */,
      badge,
      onOpen(again) {
        if (again) show("note", "重新连接：演示从头开始 (reconnected: the demo starts over)", "note");
      },
      events: {
        connected: (data) => show("connected", `已连接: ${data.message}`),
        thinking: (data) => show("thinking", `思考: ${data.step}`),
        content: (data) => show("content", `内容: ${data.text}`),
        done: (data) => {
          show("done", `完成: ${data.reason}`);
          stream.close();
        },
      },
    });
  }

  again.addEventListener("click", run);
  run();
})();
