/* The log-tail page: files by index (logs/<n>), lines coloured by level, a filter box. */
import "./demo.js";

(function () {
  "use strict";
  const { el, live, json, time } = window.SSEHub;
  const MAX_LINES = 3000;
  const RANK = { debug: 0, plain: 1, info: 1, warning: 2, error: 3, critical: 4 };
  const MIN = { all: -1, info: 1, warning: 2, error: 3 };
  const lines = document.getElementById("lines");
  const placeholder = document.getElementById("placeholder");
  const filterBox = document.getElementById("filter");
  const levelBox = document.getElementById("level");
  const followBox = document.getElementById("follow");
  const count = document.getElementById("count");
  const badge = document.getElementById("conn");
  const shown = new Set();
  const entries = [];
  let matcher = null;

  function compile(text) {
    const re = /^\/(.+)\/([a-z]*)$/.exec(text);
    if (re) {
      try {
        return new RegExp(re[1], re[2].includes("i") ? re[2] : re[2] + "i");
      } catch (err) {
        filterBox.setCustomValidity("无效的正则 invalid regex");
        return null;
      }
    }
    filterBox.setCustomValidity("");
    return text ? text.toLowerCase() : null;
  }

  function visible(entry) {
    if (!shown.has(entry.file)) return false;
    if (entry.kind === "log" && (RANK[entry.level] ?? 1) < MIN[levelBox.value]) return false;
    if (matcher === null) return true;
    const text = entry.text;
    return typeof matcher === "string" ? text.toLowerCase().includes(matcher) : matcher.test(text);
  }

  /* The line's text with the filter's matches wrapped in <mark>, built from text nodes. */
  function highlighted(text) {
    const span = el("span", { class: "x" });
    if (matcher === null) {
      span.textContent = text;
      return span;
    }
    let rest = text;
    for (let guard = 0; rest && guard < 50; guard++) {
      let at = -1;
      let len = 0;
      if (typeof matcher === "string") {
        at = rest.toLowerCase().indexOf(matcher);
        len = matcher.length;
      } else {
        const m = new RegExp(matcher.source, matcher.flags.replace("g", "")).exec(rest);
        if (m && m[0]) {
          at = m.index;
          len = m[0].length;
        }
      }
      if (at < 0 || !len) break;
      span.append(rest.slice(0, at), el("mark", {}, rest.slice(at, at + len)));
      rest = rest.slice(at + len);
    }
    span.append(rest);
    return span;
  }

  function render(entry) {
    const node =
      entry.kind === "notice"
        ? el(
            "div",
            { class: "line notice", dataset: { file: entry.file } },
            el("span", { class: "t" }, time(entry.time)),
            el("span", { class: "f" }, entry.name),
            el("span", { class: "x" }, `— ${entry.text} —`),
          )
        : el(
            "div",
            { class: `line ${entry.level}`, dataset: { file: entry.file, level: entry.level } },
            el("span", { class: "t" }, time(entry.time)),
            el("span", { class: "f", title: entry.name }, entry.name),
            el("span", { class: "lv" }, entry.level === "plain" ? "" : entry.level),
            highlighted(entry.text),
          );
    node.classList.toggle("hidden", !visible(entry));
    return node;
  }

  function add(kind, data) {
    if (!data || typeof data !== "object") return;
    const entry = {
      kind,
      file: Number(data.file),
      name: String(data.name ?? data.file),
      time: data.time,
      level: kind === "log" ? String(data.level || "plain") : "notice",
      text: String(kind === "log" ? data.line ?? "" : data.message ?? ""),
    };
    if (!shown.has(entry.file) && !knownFiles.has(entry.file)) {
      knownFiles.add(entry.file);
      shown.add(entry.file);
    }
    entry.node = render(entry);
    entries.push(entry);
    placeholder.classList.add("hidden");
    const stick = followBox.checked;
    lines.append(entry.node);
    while (entries.length > MAX_LINES) entries.shift().node.remove();
    if (stick) lines.scrollTop = lines.scrollHeight;
    updateCount();
  }

  function updateCount() {
    const visibleCount = entries.reduce((n, e) => n + (e.node.classList.contains("hidden") ? 0 : 1), 0);
    count.textContent = `${visibleCount} / ${entries.length} 行 lines`;
  }

  function refilter() {
    matcher = compile(filterBox.value.trim());
    for (const entry of entries) {
      const fresh = render(entry);
      entry.node.replaceWith(fresh);
      entry.node = fresh;
    }
    updateCount();
    if (followBox.checked) lines.scrollTop = lines.scrollHeight;
  }

  let timer = null;
  filterBox.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(refilter, 120);
  });
  levelBox.addEventListener("change", refilter);
  followBox.addEventListener("change", () => {
    if (followBox.checked) lines.scrollTop = lines.scrollHeight;
  });
  document.getElementById("clear").addEventListener("click", () => {
    for (const e of entries) e.node.remove();
    entries.length = 0;
    updateCount();
  });

  const knownFiles = new Set();

  function chips(files) {
    const box = document.getElementById("files");
    for (const f of files) {
      knownFiles.add(f.index);
      shown.add(f.index);
      const chip = el("button", { type: "button", class: "file-chip", "aria-pressed": "true", dataset: { file: f.index } }, f.name);
      chip.addEventListener("click", () => {
        const on = chip.getAttribute("aria-pressed") !== "true";
        chip.setAttribute("aria-pressed", String(on));
        if (on) shown.add(f.index);
        else shown.delete(f.index);
        refilter();
      });
      box.append(chip);
    }
  }

  /* No --tail: say how to start one instead of showing an empty box. */
  function showHowToStart() {
    const command = (text) => el("pre", { class: "command" }, el("code", {}, text));
    placeholder.replaceChildren(
      el(
        "div",
        { id: "how-to-tail", class: "how-to" },
        el("h2", {}, "没有跟随任何文件 ", el("span", { class: "en" }, "No file is being followed")),
        el("p", {}, "这个 hub 启动时没有 --tail。重新启动它并指定要跟随的日志文件（可重复）："),
        el("p", { class: "en" }, "This hub was started without --tail. Restart it with the log files to follow (repeatable):"),
        command("ssehub serve --tail /var/log/app.log"),
        el("p", { class: "en" }, "With make run, or to show more of each file at start:"),
        command("make run ARGS='--tail app.log --tail-lines 50'"),
        el(
          "p",
          { class: "muted" },
          "文件像 tail -F 一样被跟随（追加、截断、轮转），先显示最后 10 行（--tail-lines）。 " +
            "Files are followed like tail -F (appends, truncation, rotation), starting with their last 10 lines (--tail-lines).",
        ),
      ),
    );
  }

  async function start(attempt) {
    let info;
    try {
      info = await json("logs/files");
    } catch (err) {
      window.SSEHub.setBadge(badge, "reconnecting");
      setTimeout(() => start(attempt + 1), Math.min(10000, 1000 * 2 ** attempt));
      return;
    }
    if (!info.files.length) {
      window.SSEHub.setBadge(badge, "idle");
      showHowToStart();
      return;
    }
    chips(info.files);
    placeholder.textContent = "等待新的日志行… waiting for lines";
    live(null, {
      topics: info.files.map((f) => f.topic),
      badge,
      lastEventId: info.since,
      events: {
        log: (data) => add("log", data),
        notice: (data) => add("notice", data),
        "ssehub-reset": () => add("notice", { file: -1, name: "hub", message: "历史已重置 history reset" }),
      },
    });
  }

  start(0);
})();
