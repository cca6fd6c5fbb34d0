/* ssehub.js: the browser client of ssehub, one no-build ES module (no dependencies, no CDN).
 *
 * Served by every hub at /ssehub.js; copy the file into any app as it is.
 *
 *   import { subscribe, HubEventSource, EventStreamParser } from "/ssehub.js";
 *
 *   // one stream per browser: the tabs of this origin share it
 *   const source = subscribe(["chat/42", "news"], { headers: { Authorization: `Bearer ${token}` } });
 *   source.addEventListener("message", (e) => console.log(e.data, e.lastEventId));
 *   source.close();
 *
 *   // one fetch-based stream of any URL (headers, cookies, POST bodies)
 *   const one = new HubEventSource("/topics/news", { method: "POST", body: "…" });
 *
 * Conventions:
 *  - Sources are EventTargets shaped like the browser's EventSource: addEventListener,
 *    onopen / onmessage / onerror, readyState (CONNECTING 0, OPEN 1, CLOSED 2), url,
 *    lastEventId, close().  Events are MessageEvents {type, data, lastEventId, origin} with one
 *    more property, `topic`: the hub topic the event was published to, named by the stream's
 *    `topic:` field (streams opened with ?tag=topic, as subscribe() opens them), "" when the
 *    event named none (the hub's control events such as `ssehub-reset`, an untagged stream).
 *    An "error" event carries `status` (the HTTP status, 0 for a network error) and `error`.
 *  - EventStreamParser follows the WHATWG rules exactly as ssehub.protocol's parser does:
 *    one leading BOM dropped, CR / LF / CRLF (a CR at a chunk's end ends the line at once),
 *    UTF-8 split across chunks, `id` with NUL ignored, `retry` ASCII digits only (ignored past
 *    2^64-1), no dispatch without data, a half-built event dropped at the end of a stream.
 *    One extension: a `topic` field is recorded on the event being built (reset after each
 *    blank line, as `event` is; it never causes a dispatch) and given as the event's `topic`
 *    ("" if none); every other result is the WHATWG parser's, which ignores the field.
 *    maxEventSize bounds one line and one event's data buffer (in UTF-16 code units,
 *    16 MiB by default); past it EventTooLargeError is thrown and the stream is discarded.
 *  - Reconnects, as ssehub.client's Python session: Last-Event-ID header; the delay is the
 *    server's `retry` (3 s if none; never under 250 ms), grown x2 per failure in a row up to
 *    30 s, the growth jittered ("equal" jitter), exactly like ssehub.protocol.ReconnectPolicy,
 *    and never shorter than a Retry-After (seconds).  A stream that dispatched an event is
 *    healthy and starts the count afresh.  Network errors, 408, 429 and 5xx are retried; any
 *    other non-200 answer, or a body that is not text/event-stream, closes the source for good
 *    (as a browser does); 204 closes it without an error.
 *  - Hidden tabs keep their stream (openWhenHidden: false closes it while hidden).
 *  - `ssehub-reset` (the hub could not resume the cursor exactly) is dispatched like any event:
 *    listen for it and re-fetch state.  Its id starts a new baseline for de-duplication.
 *  - Sharing (subscribe, share: true by default): the tabs of one origin with the same hub URL
 *    and headers elect a leader with Web Locks; the leader holds ONE stream,
 *    GET {hub}events?topic=…&topic=…&tag=topic for the union of every tab's topics, and relays
 *    each event with its topic over a BroadcastChannel.  Every tab delivers an event id once: ids of the hub
 *    ("{epoch}-{seq}") must grow within an epoch, other ids are remembered (the last 1024).
 *    A new leader resumes from the highest id its tab has seen (events and the opening
 *    cursor), so nothing is lost and nothing repeats.  Each source delivers only the events of
 *    its own topics (the tagged stream names each event's topic); events that name no topic
 *    (`ssehub-reset`) reach every source.  Without navigator.locks or BroadcastChannel each
 *    source opens its own stream (tagged too, so `event.topic` is set either way).
 */

export const CONNECTING = 0;
export const OPEN = 1;
export const CLOSED = 2;
export const DEFAULT_MAX_EVENT_SIZE = 16 * 1024 * 1024;
export const RESET_EVENT = "ssehub-reset";

const MAX_RETRY = 2n ** 64n - 1n;
const MAX_TIMEOUT = 2 ** 31 - 1;
const MIN_RECONNECT_DELAY = 250; // ms: a `retry: 0` must not spin
const RECENT_IDS = 1024;

export class EventTooLargeError extends Error {
  constructor(size, limit) {
    super(`event stream line or event of ${size} characters is over the bound of ${limit}`);
    this.name = "EventTooLargeError";
    this.size = size;
    this.limit = limit;
  }
}

/* The reconnection time in `value` (ms), or null if it must be ignored. */
function retryValue(value) {
  if (!/^[0-9]+$/.test(value)) return null;
  const digits = value.replace(/^0+/, "") || "0";
  if (digits.length > 20 || BigInt(digits) > MAX_RETRY) return null;
  return Number(digits);
}

/* Bytes in, events out: {type, data, lastEventId, topic}.  All state lives in this class. */
export class EventStreamParser {
  constructor(options) {
    const opts = options || {};
    const max = opts.maxEventSize === undefined ? DEFAULT_MAX_EVENT_SIZE : opts.maxEventSize;
    if (max !== null && !(max >= 1)) throw new RangeError(`maxEventSize must be positive or null: ${max}`);
    this.maxEventSize = max;
    this.lastEventId = opts.lastEventId || "";
    this.retry = null;
    this._startStream();
  }

  _startStream() {
    this._decoder = new TextDecoder("utf-8", { ignoreBOM: true });
    this._atStreamStart = true;
    this._skipLF = false;
    this._partial = [];
    this._partialSize = 0;
    this._data = [];
    this._dataSize = 0;
    this._eventType = "";
    this._topic = "";
    this._idBuffer = this.lastEventId;
  }

  /* Parse the next chunk (Uint8Array or string); return the events it completed. */
  feed(chunk) {
    try {
      return this._feed(chunk);
    } catch (err) {
      if (err instanceof EventTooLargeError) this._startStream();
      throw err;
    }
  }

  /* End the stream: a half-built event and an unfinished line are discarded. */
  eof() {
    this._startStream();
    return [];
  }

  _feed(chunk) {
    let text = typeof chunk === "string" ? chunk : this._decoder.decode(chunk, { stream: true });
    if (!text) return [];
    if (this._atStreamStart) {
      this._atStreamStart = false;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
      if (!text) return [];
    }
    if (this._skipLF) {
      this._skipLF = false;
      if (text.charCodeAt(0) === 10) text = text.slice(1);
      if (!text) return [];
    }
    if (text.includes("\r")) {
      this._skipLF = text.charCodeAt(text.length - 1) === 13;
      text = text.replace(/\r\n?/g, "\n");
    }
    const limit = this.maxEventSize === null ? Infinity : this.maxEventSize;
    if (this._partial.length) {
      const lineEnd = text.indexOf("\n");
      const size = this._partialSize + (lineEnd < 0 ? text.length : lineEnd);
      if (size > limit) throw new EventTooLargeError(size, limit);
      this._partial.push(text);
      if (lineEnd < 0) {
        this._partialSize = size;
        return [];
      }
      text = this._partial.join("");
      this._partial = [];
      this._partialSize = 0;
    }
    const tailSize = text.length - text.lastIndexOf("\n") - 1;
    if (tailSize > limit) throw new EventTooLargeError(tailSize, limit);
    const events = [];
    const tail = this._interpret(text, events, limit);
    if (tail < text.length) {
      this._partial = [text.slice(tail)];
      this._partialSize = text.length - tail;
    }
    return events;
  }

  _interpret(text, events, limit) {
    let data = this._data;
    let dataSize = this._dataSize;
    let eventType = this._eventType;
    let topic = this._topic;
    let idBuffer = this._idBuffer;
    let lastEventId = this.lastEventId;
    let retry = this.retry;
    let pos = 0;
    for (;;) {
      const lineEnd = text.indexOf("\n", pos);
      if (lineEnd < 0) break;
      const start = pos;
      pos = lineEnd + 1;
      if (lineEnd - start > limit) throw new EventTooLargeError(lineEnd - start, limit);
      if (lineEnd === start) {
        lastEventId = idBuffer;
        if (data.length) {
          events.push({ type: eventType || "message", data: data.join("\n"), lastEventId, topic });
          data = [];
          dataSize = 0;
        }
        eventType = "";
        topic = "";
        continue;
      }
      const line = text.slice(start, lineEnd);
      const colon = line.indexOf(":");
      if (colon === 0) continue; // a comment
      let name = line;
      let value = "";
      if (colon > 0) {
        name = line.slice(0, colon);
        value = line.slice(colon + (line.charCodeAt(colon + 1) === 32 ? 2 : 1));
      }
      if (name === "data") {
        dataSize += value.length + 1;
        if (dataSize > limit) throw new EventTooLargeError(dataSize, limit);
        data.push(value);
      } else if (name === "event") {
        eventType = value;
      } else if (name === "id") {
        if (!value.includes("\0")) idBuffer = value;
      } else if (name === "retry") {
        const parsed = retryValue(value);
        if (parsed !== null) retry = parsed;
      } else if (name === "topic") {
        topic = value; // ssehub's extension: ignored by the standard, no dispatch effect
      }
    }
    this._data = data;
    this._dataSize = dataSize;
    this._eventType = eventType;
    this._topic = topic;
    this._idBuffer = idBuffer;
    this.lastEventId = lastEventId;
    this.retry = retry;
    return pos;
  }
}

/* The delay (ms) before reconnection attempt n (from 1), as ssehub.protocol.ReconnectPolicy. */
export class ReconnectPolicy {
  constructor(options) {
    const opts = options || {};
    this.defaultDelay = opts.defaultDelay ?? 3000;
    this.backoffFactor = opts.backoffFactor ?? 2;
    this.maxDelay = opts.maxDelay ?? 30000;
    this.random = opts.random || Math.random;
  }

  baseDelay(attempt, serverRetry) {
    const initial = serverRetry === null || serverRetry === undefined ? this.defaultDelay : serverRetry;
    return Math.min(Math.max(this.maxDelay, initial), initial * this.backoffFactor ** (attempt - 1));
  }

  nextDelay(attempt, serverRetry) {
    const base = this.baseDelay(attempt, serverRetry);
    const initial = this.baseDelay(1, serverRetry);
    const extra = base - initial;
    return initial + extra / 2 + this.random() * (extra / 2);
  }
}

const HUB_ID = /^([0-9a-z]{1,32})-([0-9]{1,19})$/;

/* Which event ids were delivered: hub cursors must grow within an epoch; others are remembered.
 * A reset event is dropped when its id is not past what was delivered (nothing was lost here). */
export class IdTracker {
  constructor(lastEventId) {
    this.last = "";
    this._epoch = null;
    this._seq = -1n;
    this._recent = new Set();
    if (lastEventId) this.advance(lastEventId);
  }

  /* Whether the event (type, id) is new; if it is, it becomes the last one. */
  accept(type, id) {
    if (!id) return true;
    const m = HUB_ID.exec(id);
    if (m) {
      const seq = BigInt(m[2]);
      if (m[1] === this._epoch && seq <= this._seq) return false;
      this._epoch = m[1];
      this._seq = seq;
      this.last = id;
      return true;
    }
    if (this._recent.has(id)) return false;
    this._remember(id);
    this.last = id;
    return true;
  }

  /* A cursor that came without an event (the hub's opening block): move forward only. */
  advance(id) {
    if (!id) return;
    const m = HUB_ID.exec(id);
    if (!m) {
      if (!this.last) this.last = id;
      return;
    }
    const seq = BigInt(m[2]);
    if (this._epoch === null || (m[1] === this._epoch && seq > this._seq)) {
      this._epoch = m[1];
      this._seq = seq;
      this.last = id;
    }
  }

  _remember(key) {
    this._recent.add(key);
    if (this._recent.size > RECENT_IDS) this._recent.delete(this._recent.values().next().value);
  }
}

/* An EventTarget with EventSource's on* properties and readyState constants. */
class SourceBase extends EventTarget {
  constructor() {
    super();
    this.readyState = CONNECTING;
    this._handlers = {};
  }

  _setHandler(type, fn) {
    if (this._handlers[type]) this.removeEventListener(type, this._handlers[type]);
    this._handlers[type] = typeof fn === "function" ? fn : null;
    if (this._handlers[type]) this.addEventListener(type, this._handlers[type]);
  }

  get onopen() {
    return this._handlers.open || null;
  }
  set onopen(fn) {
    this._setHandler("open", fn);
  }
  get onmessage() {
    return this._handlers.message || null;
  }
  set onmessage(fn) {
    this._setHandler("message", fn);
  }
  get onerror() {
    return this._handlers.error || null;
  }
  set onerror(fn) {
    this._setHandler("error", fn);
  }

  _message(type, data, lastEventId, origin, topic) {
    const event = new MessageEvent(type, { data, lastEventId, origin });
    event.topic = topic || ""; // MessageEvent has no such member: an own property
    this.dispatchEvent(event);
  }

  _error(status, error) {
    const event = new Event("error");
    event.status = status || 0;
    event.error = error || null;
    this.dispatchEvent(event);
  }
}
for (const [name, value] of Object.entries({ CONNECTING, OPEN, CLOSED })) {
  SourceBase[name] = value;
  SourceBase.prototype[name] = value;
}

function retriable(status) {
  return status === 408 || status === 429 || status >= 500;
}

async function headersOf(option) {
  const value = typeof option === "function" ? await option() : option;
  return value || {};
}

/* One fetch-based event stream with reconnects; EventSource's API plus headers and bodies. */
export class HubEventSource extends SourceBase {
  constructor(url, options) {
    super();
    const opts = options || {};
    this._opts = opts;
    this.url = new URL(url, globalThis.document ? document.baseURI : undefined).toString();
    this.withCredentials = opts.credentials === "include" || opts.withCredentials === true;
    this.lastEventId = opts.lastEventId || "";
    this._policy = opts.reconnect instanceof ReconnectPolicy ? opts.reconnect : new ReconnectPolicy(opts.reconnect);
    this._parser = new EventStreamParser({ maxEventSize: opts.maxEventSize, lastEventId: this.lastEventId });
    this._attempts = 0;
    this._retryAfter = 0; // ms, from the last refused answer
    this._abort = null;
    this._timer = null;
    this._closed = false;
    this._hidden = false;
    this._tap = opts.tap || null; // internal: the shared client's relay
    if (opts.openWhenHidden === false && globalThis.document) {
      this._onVisibility = () => this._visibility();
      document.addEventListener("visibilitychange", this._onVisibility);
    }
    queueMicrotask(() => this._connect());
  }

  /* The reconnection time in ms, as last set by the server's `retry` (null: none yet). */
  get retry() {
    return this._parser.retry;
  }

  close() {
    if (this._closed) return;
    this._closed = true;
    this._stop();
    if (this._onVisibility) document.removeEventListener("visibilitychange", this._onVisibility);
    this._setState(CLOSED);
  }

  /* Reconnect now to `url` (same Last-Event-ID): the shared client's union changed. */
  reopen(url) {
    if (this._closed) return;
    if (url) this.url = new URL(url, this.url).toString();
    this._stop();
    this._attempts = 0;
    this._connect();
  }

  _stop() {
    if (this._timer !== null) clearTimeout(this._timer);
    this._timer = null;
    if (this._abort) this._abort.abort();
    this._abort = null;
  }

  _visibility() {
    if (document.visibilityState === "hidden") {
      this._hidden = true;
      this._stop();
    } else if (this._hidden) {
      this._hidden = false;
      if (!this._closed) this._connect();
    }
  }

  _setState(state) {
    this.readyState = state;
    if (this._tap) this._tap.state(state);
  }

  async _connect() {
    this._timer = null;
    if (this._closed || this._hidden) return;
    const abort = new AbortController();
    this._abort = abort;
    this._parser.lastEventId = this.lastEventId; // a reopen may have moved it
    this._parser.eof(); // a new stream: nothing half-parsed carries over
    this._setState(CONNECTING);
    let status = 0;
    let error = null;
    try {
      const headers = { Accept: "text/event-stream", ...(await headersOf(this._opts.headers)) };
      if (this.lastEventId) headers["Last-Event-ID"] = this.lastEventId;
      const fetcher = this._opts.fetch || globalThis.fetch.bind(globalThis);
      const response = await fetcher(this.url, {
        method: this._opts.method || "GET",
        headers,
        body: this._opts.body,
        credentials: this._opts.credentials || (this._opts.withCredentials ? "include" : "same-origin"),
        cache: "no-store",
        signal: abort.signal,
      });
      status = response.status;
      if (abort !== this._abort) return;
      if (status === 204) {
        this.close();
        return;
      }
      const type = (response.headers.get("content-type") || "").split(";")[0].trim().toLowerCase();
      if (status !== 200 || type !== "text/event-stream") {
        await response.body?.cancel().catch(() => {});
        const after = (response.headers.get("retry-after") || "").trim();
        this._retryAfter = /^[0-9]+$/.test(after) ? Number(after) * 1000 : 0;
        if (retriable(status)) throw new Error(`HTTP ${status}`);
        this._fail(status, new Error(`HTTP ${status} ${type}`));
        return;
      }
      this._setState(OPEN);
      this.dispatchEvent(new Event("open"));
      const reader = response.body.getReader();
      const origin = new URL(response.url || this.url).origin;
      for (;;) {
        const { value, done } = await reader.read();
        if (abort !== this._abort) return;
        if (done) break;
        const events = this._parser.feed(value);
        if (events.length) this._attempts = 0; // healthy: an event was dispatched
        this._deliver(events, origin);
        if (abort !== this._abort) return;
      }
    } catch (err) {
      if (abort !== this._abort || this._closed) return;
      abort.abort(); // an event over the bound, a network error: this connection is done
      error = err;
    }
    this._parser.eof();
    this._retryLater(status, error);
  }

  _deliver(events, origin) {
    for (const e of events) {
      this.lastEventId = e.lastEventId;
      if (this._tap) this._tap.event(e, origin);
      else this._message(e.type, e.data, e.lastEventId, origin, e.topic);
      if (this._closed) return;
    }
    if (this._parser.lastEventId !== this.lastEventId) {
      this.lastEventId = this._parser.lastEventId; // an id with no event: the hub's opening cursor
      if (this._tap) this._tap.cursor(this.lastEventId);
    }
  }

  _fail(status, error) {
    this._closed = true;
    this._abort = null;
    if (this._onVisibility) document.removeEventListener("visibilitychange", this._onVisibility);
    this._setState(CLOSED);
    this._error(status, error);
  }

  _retryLater(status, error) {
    this._abort = null;
    if (this._closed) return;
    this._setState(CONNECTING);
    this._error(status, error);
    if (this._closed) return;
    this._attempts += 1;
    const retry = this._parser.retry === null ? null : Math.max(this._parser.retry, MIN_RECONNECT_DELAY);
    let delay = Math.max(this._policy.nextDelay(this._attempts, retry), MIN_RECONNECT_DELAY);
    if (this._retryAfter) delay = Math.max(delay, this._retryAfter);
    this._retryAfter = 0;
    this._timer = setTimeout(() => this._connect(), Math.min(delay, MAX_TIMEOUT));
  }
}

/* ---- one stream per browser: the tabs' agents ------------------------------------------- */

/* The hub's stream of `topics`; ?tag=topic makes each event name its topic (a `topic:` line). */
function eventsURL(hub, topics) {
  const url = new URL("events", hub);
  for (const topic of topics) url.searchParams.append("topic", topic);
  url.searchParams.set("tag", "topic");
  return url.toString();
}

function hash(text) {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h.toString(36);
}

function newTabId() {
  return globalThis.crypto?.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random()}`;
}

const AGENTS = new Map();

/* This tab's member of one sharing group (one hub URL and header set): leader or follower. */
class ShareAgent {
  constructor(key, hub, opts) {
    this.key = key;
    this.hub = hub;
    this.opts = opts;
    this.tab = newTabId();
    this.sources = new Set();
    this.ids = new IdTracker(opts.lastEventId || "");
    this.state = CONNECTING;
    this.leading = false;
    this.members = new Map(); // leader: tab -> topics
    this.stream = null;
    this.streamTopics = "";
    this.channel = new BroadcastChannel(`ssehub:${key}`);
    this.channel.onmessage = (e) => this._receive(e.data);
    this._reopenTimer = null;
    this._reopening = false; // leader: reconnecting for new topics, the tabs stay OPEN
    this._resign = null;
    this.since = ""; // leader: the oldest cursor a new source asked for, until the next reopen
    this._abortWait = new AbortController();
    // Messages wait until this tab holds its tab lock: a leader that hears from a tab can
    // then see that lock, so it never prunes a live tab (see _prune).
    this._held = false;
    this._queue = [];
    navigator.locks.request(`ssehub-tab:${key}:${this.tab}`, () => {
      this._held = true;
      for (const message of this._queue.splice(0)) this._post(message);
      return new Promise((resolve) => (this._releaseTab = resolve));
    });
    navigator.locks
      .request(`ssehub-leader:${key}`, { signal: this._abortWait.signal }, () => this._lead())
      .catch(() => {});
    this._onPageHide = () => this._post({ t: "bye", tab: this.tab });
    window.addEventListener("pagehide", this._onPageHide);
  }

  topics() {
    const all = new Set();
    for (const s of this.sources) for (const t of s.topics) all.add(t);
    return [...all].sort();
  }

  add(source, since) {
    this.sources.add(source);
    this._changed(since);
  }

  remove(source) {
    this.sources.delete(source);
    if (this.sources.size) {
      this._changed();
      return;
    }
    AGENTS.delete(this.key);
    this._post({ t: "bye", tab: this.tab });
    window.removeEventListener("pagehide", this._onPageHide);
    this._abortWait.abort();
    if (this.leading && this.stream) this._post({ t: "state", state: CONNECTING });
    this._dropStream();
    if (this._resign) this._resign();
    if (this._releaseTab) this._releaseTab();
    this.channel.close();
  }

  /* This tab's topics changed; `since`: a new source asks for the events after that id. */
  _changed(since) {
    if (this.leading) {
      this.members.set(this.tab, this.topics());
      this._wantSince(since);
      this._scheduleReopen();
    } else {
      this._post({ t: "hello", tab: this.tab, topics: this.topics(), since: since || "" });
    }
  }

  /* Leader: remember the oldest hub cursor a new source asked to resume from. */
  _wantSince(since) {
    const m = since ? HUB_ID.exec(since) : null;
    if (!m) return;
    const last = HUB_ID.exec(this.ids.last || "");
    if (last && (m[1] !== last[1] || BigInt(m[2]) >= BigInt(last[2]))) return;
    const pending = this.since ? HUB_ID.exec(this.since) : null;
    if (!pending || (pending[1] === m[1] && BigInt(m[2]) < BigInt(pending[2]))) this.since = since;
  }

  _post(message) {
    if (!this._held) {
      this._queue.push(message);
      return;
    }
    try {
      this.channel.postMessage(message);
    } catch (err) {
      /* the channel is closed: the tab is going away */
    }
  }

  async _lead() {
    if (!this.sources.size) return;
    this.leading = true;
    this.since = "";
    this.members = new Map([[this.tab, this.topics()]]);
    this._post({ t: "leader", tab: this.tab });
    await new Promise((resolve) => {
      this._resign = resolve;
      this._scheduleReopen();
    });
    this.leading = false;
  }

  async _prune() {
    const held = new Set(((await navigator.locks.query()).held || []).map((l) => l.name));
    for (const tab of this.members.keys()) {
      if (tab !== this.tab && !held.has(`ssehub-tab:${this.key}:${tab}`)) this.members.delete(tab);
    }
  }

  _scheduleReopen() {
    if (this._reopenTimer !== null) return;
    this._reopenTimer = setTimeout(async () => {
      await this._prune();
      this._reopenTimer = null;
      if (this.leading) this._reopen();
    }, this.opts.gatherDelay ?? 30);
  }

  _reopen() {
    const union = new Set();
    for (const topics of this.members.values()) for (const t of topics) union.add(t);
    const topics = [...union].sort();
    const joined = JSON.stringify(topics);
    const since = this.since;
    this.since = "";
    if (this.stream && this.stream.readyState === CLOSED) this._dropStream(); // refused: try anew
    if (joined === this.streamTopics && this.stream && !since) return;
    this.streamTopics = joined;
    if (!topics.length) {
      this._dropStream();
      return;
    }
    const url = eventsURL(this.hub, topics);
    if (this.stream) {
      // the tabs see no CONNECTING / open for a change of topics: only a failure shows
      this._reopening = this.state === OPEN;
      this.stream.lastEventId = since || this.ids.last || this.stream.lastEventId;
      this.stream.reopen(url);
      return;
    }
    const agent = this;
    this.stream = new HubEventSource(url, {
      ...this.opts,
      openWhenHidden: true, // the stream is every tab's, not only the leader's
      lastEventId: since || this.ids.last,
      tap: {
        event(e, origin) {
          const message = { t: "event", type: e.type, data: e.data, id: e.lastEventId, topic: e.topic, origin };
          agent._post(message);
          agent._event(message);
        },
        cursor(id) {
          agent._post({ t: "cursor", id });
          agent._cursor(id);
        },
        state(state) {
          if (agent._reopening && state === CONNECTING) return;
          agent._reopening = false;
          agent._post({ t: "state", state });
          agent._state(state);
        },
      },
    });
    this.stream.addEventListener("error", (e) => {
      if (this._reopening) {
        this._reopening = false;
        this._post({ t: "state", state: this.stream.readyState });
        this._state(this.stream.readyState);
      }
      this._post({ t: "error", status: e.status, message: e.error ? String(e.error.message) : "" });
      this._errorAll(e.status, e.error);
    });
  }

  _receive(m) {
    if (!m || typeof m !== "object") return;
    if (m.t === "event") this._event(m);
    else if (m.t === "cursor") this._cursor(m.id);
    else if (m.t === "state") this._state(m.state);
    else if (m.t === "error") this._errorAll(m.status, new Error(m.message));
    else if (m.t === "leader" && !this.leading) this._changed();
    else if (this.leading && m.t === "hello") {
      this.members.set(m.tab, Array.isArray(m.topics) ? m.topics.map(String) : []);
      this._wantSince(typeof m.since === "string" ? m.since : "");
      this._post({ t: "state", state: this.state });
      this._scheduleReopen();
    } else if (this.leading && m.t === "bye") {
      this.members.delete(m.tab);
      this._scheduleReopen();
    }
  }

  /* Each source delivers an id of its own topics once (an event that names no topic goes to
   * every source): a source that asked for older events gets their replay. */
  _event(m) {
    this.ids.accept(m.type, m.id);
    const topic = typeof m.topic === "string" ? m.topic : "";
    for (const s of [...this.sources]) {
      if (topic && !s._topicSet.has(topic)) continue;
      if (s._ids.accept(m.type, m.id)) s._message(m.type, m.data, m.id, m.origin, topic);
    }
  }

  /* A cursor without an event: the agent moves on; a source with no id yet starts there. */
  _cursor(id) {
    this.ids.advance(String(id || ""));
    for (const s of this.sources) if (!s._ids.last) s._ids.advance(String(id || ""));
  }

  /* Close the stream without telling the tabs it closed: another leader takes over. */
  _dropStream() {
    if (!this.stream) return;
    this.stream._tap = null;
    this.stream.close();
    this.stream = null;
  }

  _state(state) {
    const was = this.state;
    this.state = state === CLOSED ? CLOSED : state;
    for (const s of [...this.sources]) {
      if (s.readyState === CLOSED && s._closed) continue;
      s.readyState = this.state;
      if (state === OPEN && was !== OPEN) s.dispatchEvent(new Event("open"));
    }
  }

  _errorAll(status, error) {
    for (const s of [...this.sources]) s._error(status, error);
  }
}

/* A source of hub topics: shared with the other tabs when it can be, else its own stream. */
export class TopicSource extends SourceBase {
  constructor(topics, options) {
    super();
    const opts = options || {};
    this.topics = [...new Set((typeof topics === "string" ? [topics] : topics).map(String))];
    if (!this.topics.length) throw new TypeError("name at least one topic");
    this._topicSet = new Set(this.topics);
    const base = globalThis.document ? document.baseURI : undefined;
    this.hub = new URL(opts.hub || "/", base).toString();
    if (!this.hub.endsWith("/")) this.hub += "/";
    this.url = eventsURL(this.hub, this.topics);
    this._closed = false;
    const canShare =
      opts.share !== false &&
      typeof opts.headers !== "function" &&
      !opts.fetch &&
      globalThis.BroadcastChannel &&
      globalThis.navigator?.locks &&
      globalThis.window;
    this.shared = Boolean(canShare);
    if (this.shared) {
      const headers = Object.entries(opts.headers || {}).sort();
      const key = hash(JSON.stringify([this.hub, headers, opts.credentials || ""]));
      let agent = AGENTS.get(key);
      if (!agent) {
        agent = new ShareAgent(key, this.hub, opts);
        AGENTS.set(key, agent);
      }
      this._agent = agent;
      this._ids = new IdTracker(opts.lastEventId || agent.ids.last);
      this.readyState = agent.state;
      agent.add(this, opts.lastEventId || "");
      if (agent.state === OPEN) queueMicrotask(() => this._opened());
    } else {
      this._own = new HubEventSource(this.url, {
        ...opts,
        tap: {
          event: (e, origin) => this._message(e.type, e.data, e.lastEventId, origin, e.topic),
          cursor: () => {},
          state: (state) => {
            const was = this.readyState;
            this.readyState = state;
            if (state === OPEN && was !== OPEN) this.dispatchEvent(new Event("open"));
          },
        },
      });
      this._own.addEventListener("error", (e) => this._error(e.status, e.error));
    }
  }

  get lastEventId() {
    return this._agent ? this._ids.last : this._own.lastEventId;
  }

  /* Whether this tab holds the browser's shared stream now. */
  get leader() {
    return Boolean(this._agent && this._agent.leading);
  }

  _opened() {
    if (!this._closed && this.readyState === OPEN) this.dispatchEvent(new Event("open"));
  }

  close() {
    if (this._closed) return;
    this._closed = true;
    this.readyState = CLOSED;
    if (this._agent) this._agent.remove(this);
    else this._own.close();
  }
}

/* subscribe(topics, {hub, headers, credentials, share, lastEventId, ...}) -> TopicSource. */
export function subscribe(topics, options) {
  return new TopicSource(topics, options);
}
