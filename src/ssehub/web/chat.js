/* The chat page: answers are hub topics, read with EventSource and resumed after a reload.
 *
 * Flow: POST chat/answers {message, history} -> {answer_id, events, last_event_id}; then
 * EventSource(events?last_event_id=…) delivers connected, thinking…, content…, done | error.
 * After every event the turn (its text so far AND that event's lastEventId) is saved to
 * sessionStorage in one write, so a reload reopens the stream after exactly the last event the
 * page showed: no token twice, none missing.
 *
 * Answers are Markdown rendered by markdown.js into DOM nodes (the model's text only ever becomes
 * Text nodes: no HTML from the model reaches the page), at most once per animation frame while an
 * answer streams.
 */
(function () {
  "use strict";
  const { el, live, json, renderMarkdown } = window.SSEHub;
  const KEY = "ssehub.chat.v1";
  const MAX_TURNS = 50;
  const messages = document.getElementById("messages");
  const empty = document.getElementById("empty");
  const form = document.getElementById("composer");
  const input = document.getElementById("message");
  const sendButton = document.getElementById("send");
  const stopButton = document.getElementById("stop");
  const badge = document.getElementById("conn");
  const views = new Map();
  let store = load();
  let current = null;

  function load() {
    try {
      const data = JSON.parse(sessionStorage.getItem(KEY) || "null");
      if (data && Array.isArray(data.turns)) return data;
    } catch (err) {
      /* a damaged entry starts a new conversation */
    }
    return { turns: [] };
  }

  function save() {
    sessionStorage.setItem(KEY, JSON.stringify(store));
  }

  /* ---- rendering ------------------------------------------------------- */

  function view(turn) {
    let v = views.get(turn);
    if (v) return v;
    v = {
      root: el("article", { class: "turn" }),
      question: el("div", { class: "bubble question" }),
      thinking: el("div", { class: "thinking" }, el("span", { class: "dots" }, el("i"), el("i"), el("i"))),
      step: el("span", { class: "step" }),
      steps: el("details", { class: "steps" }),
      text: el("div", { class: "answer-text" }),
      status: el("div", { class: "status-line" }),
      error: el("div", { class: "error-box hidden", role: "alert" }),
    };
    v.thinking.append(v.step);
    v.root.append(
      el("div", { class: "user" }, v.question),
      el(
        "div",
        { class: "assistant" },
        el("div", { class: "avatar", "aria-hidden": "true" }, "AI"),
        el("div", { class: "body" }, v.thinking, v.steps, el("div", { class: "bubble answer" }, v.text), v.error, v.status),
      ),
    );
    views.set(turn, v);
    messages.append(v.root);
    return v;
  }

  const STATUS = {
    starting: "发送中 sending…",
    streaming: "回答中 answering…",
    done: "",
    stopped: "已停止 stopped",
    error: "出错了 error",
  };

  function update(turn) {
    const v = view(turn);
    v.root.dataset.status = turn.status;
    if (turn.answerId) v.root.dataset.answerId = turn.answerId;
    v.question.textContent = turn.q;
    showAnswer(v, turn.a, turn.status !== "streaming");
    const live = turn.status === "starting" || turn.status === "streaming";
    const waiting = live && !turn.a;
    v.thinking.classList.toggle("hidden", !waiting);
    v.step.textContent = turn.steps.length ? `${turn.steps[turn.steps.length - 1]}…` : "思考中 thinking…";
    v.steps.classList.toggle("hidden", waiting || !turn.steps.length);
    if (!waiting && turn.steps.length && v.steps.dataset.count !== String(turn.steps.length)) {
      v.steps.dataset.count = String(turn.steps.length);
      v.steps.replaceChildren(
        el("summary", {}, `思考了 ${turn.steps.length} 步 · thought in ${turn.steps.length} steps`),
        el("ol", {}, ...turn.steps.map((s) => el("li", {}, s))),
      );
    }
    v.root.querySelector(".answer").classList.toggle("hidden", !turn.a);
    v.error.classList.toggle("hidden", !turn.error);
    v.error.textContent = turn.error || "";
    v.status.textContent = STATUS[turn.status] || "";
    empty.classList.toggle("hidden", store.turns.length > 0);
  }

  /* Render the answer's Markdown: now, or once in the next frame while tokens keep coming. */
  function showAnswer(v, text, now) {
    v.pending = text;
    if (v.rendered === text) return;
    if (now) paint(v);
    else if (!v.frame) v.frame = requestAnimationFrame(() => paint(v));
  }

  function paint(v) {
    if (v.frame) cancelAnimationFrame(v.frame);
    v.frame = 0;
    if (v.rendered === v.pending) return;
    v.rendered = v.pending;
    v.text.replaceChildren(renderMarkdown(v.pending));
  }

  function scrollDown() {
    messages.scrollTop = messages.scrollHeight;
  }

  function setBusy(busy) {
    sendButton.classList.toggle("hidden", busy);
    stopButton.classList.toggle("hidden", !busy);
    if (!busy) window.SSEHub.setBadge(badge, "idle");
  }

  /* ---- answering ------------------------------------------------------- */

  function history() {
    const items = [];
    for (const t of store.turns) {
      if (t.status !== "done" || !t.a) continue;
      items.push({ role: "user", content: t.q }, { role: "assistant", content: t.a });
    }
    return items.slice(-20);
  }

  async function send(message) {
    if (current || !message.trim()) return;
    const turn = { q: message, a: "", steps: [], status: "starting", answerId: null, cursor: null, error: null };
    const past = history();
    store.turns.push(turn);
    while (store.turns.length > MAX_TURNS) views.delete(store.turns.shift());
    save();
    update(turn);
    scrollDown();
    current = { turn, stream: null };
    setBusy(true);
    try {
      const answer = await json("chat/answers", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ message, history: past }),
      });
      turn.answerId = answer.answer_id;
      turn.events = answer.events;
      turn.cursor = answer.last_event_id;
      turn.status = "streaming";
      save();
      update(turn);
      follow(turn);
    } catch (err) {
      turn.status = "error";
      turn.error = err.status
        ? `hub 拒绝了请求（${err.message}）`
        : "无法连接 hub，请稍后再试（the hub is unreachable; try again）";
      finish(turn);
    }
  }

  function follow(turn) {
    current = { turn, stream: null };
    setBusy(true);
    const url = turn.events || `chat/answers/${turn.answerId}/events`;
    const progress = (e) => {
      if (e.lastEventId) turn.cursor = e.lastEventId;
    };
    current.stream = live(url, {
      badge,
      lastEventId: turn.cursor,
      events: {
        connected: (data, e) => {
          progress(e);
          save();
        },
        thinking: (data, e) => {
          turn.steps.push(data.step);
          progress(e);
          save();
          update(turn);
        },
        content: (data, e) => {
          turn.a += data.text;
          progress(e);
          save();
          update(turn);
          scrollDown();
        },
        done: (data, e) => {
          progress(e);
          turn.status = data.reason === "stopped" ? "stopped" : "done";
          if (data.reason === "length") turn.error = "回答太长，已截断（answer cut at the length limit）";
          finish(turn);
        },
        error: (data, e) => {
          progress(e);
          turn.status = "error";
          turn.error = (data && data.message) || String(data);
          finish(turn);
        },
        "ssehub-reset": () => {
          turn.status = "error";
          turn.error = "回答的历史已不可用（the answer's history is gone）";
          finish(turn);
        },
      },
      async onFail() {
        /* The EventSource gave up (an HTTP error). 404 means the hub no longer has this answer. */
        try {
          const ctrl = new AbortController();
          const probe = await fetch(url, { headers: { Accept: "text/event-stream" }, signal: ctrl.signal });
          ctrl.abort();
          if (probe.status === 404) {
            turn.status = "error";
            turn.error = "回答已丢失：hub 重启了，且没有保存历史（the answer was lost in a restart）";
            finish(turn);
            return false;
          }
        } catch (err) {
          /* the hub is still down: keep trying */
        }
        return true;
      },
    });
  }

  function finish(turn) {
    if (current && current.turn === turn) {
      if (current.stream) current.stream.close();
      current = null;
    }
    save();
    update(turn);
    scrollDown();
    setBusy(false);
  }

  function stop() {
    if (!current) return;
    const turn = current.turn;
    if (turn.answerId) {
      fetch(`chat/answers/${turn.answerId}/stop`, { method: "POST" }).catch(() => {});
    }
    turn.status = "stopped";
    finish(turn);
    input.focus();
  }

  /* ---- wiring ---------------------------------------------------------- */

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const message = input.value;
    if (!message.trim() || current) return;
    input.value = "";
    autosize();
    send(message);
  });
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      form.requestSubmit();
    }
  });
  function autosize() {
    input.style.height = "auto";
    input.style.height = `${Math.min(input.scrollHeight, 160)}px`;
  }
  input.addEventListener("input", autosize);
  stopButton.addEventListener("click", stop);
  for (const button of document.querySelectorAll(".suggestion")) {
    button.addEventListener("click", () => send(button.textContent));
  }
  document.getElementById("new-chat").addEventListener("click", () => {
    if (current) stop();
    store = { turns: [] };
    save();
    views.clear();
    messages.replaceChildren(empty);
    empty.classList.remove("hidden");
  });

  json("chat/answers")
    .then((info) => {
      document.getElementById("responder").textContent = info.responder;
    })
    .catch(() => {
      document.getElementById("responder").textContent = "?";
    });

  /* Restore the conversation; continue an answer that was still coming. */
  for (const turn of store.turns) {
    if (turn.status === "starting") {
      turn.status = "error";
      turn.error = "页面在发送时被关闭（the page closed while sending）";
    }
    update(turn);
  }
  scrollDown();
  const last = store.turns[store.turns.length - 1];
  if (last && last.status === "streaming" && last.answerId) follow(last);
  else setBusy(false);
  input.focus();
})();
