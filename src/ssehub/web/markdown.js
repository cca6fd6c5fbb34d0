/* Markdown for model answers, built as DOM nodes: no HTML from the model ever reaches the page.
 *
 * window.SSEHub.renderMarkdown(text) -> DocumentFragment.  Every piece of the model's text becomes
 * a Text node (document.createTextNode / textContent); elements are created by name from a fixed
 * list, never parsed from a string (no innerHTML anywhere).  So "<img onerror=…>" or "<script>"
 * in an answer shows as those characters.
 *
 * Supported (a small, predictable subset of CommonMark):
 *   blocks  — ``` fenced code (optionally with a language; an unclosed fence runs to the end, as
 *             while an answer streams), # headings (1–6), - * + bullet lists, 1. numbered lists,
 *             > quotes, --- rules, paragraphs (a single newline is a line break);
 *   inline  — `code`, **bold**, *italic* / _italic_, [text](url) — a link only for http:, https:
 *             and mailto: URLs (anything else, e.g. javascript:, stays plain text), opened with
 *             rel="noopener noreferrer" in a new tab.
 * Bounded: a closer that is not in the rest of a line is never looked for again, and nesting
 * (inline markers, quotes) stops at MAX_DEPTH levels: the rest is shown as plain text.
 */
(function () {
  "use strict";

  const FENCE = /^\s{0,3}(```+|~~~+)\s*([\w+#.-]*)\s*$/;
  const HEADING = /^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$/;
  const BULLET = /^\s{0,3}[-*+]\s+(.*)$/;
  const NUMBERED = /^\s{0,3}(\d{1,9})[.)]\s+(.*)$/;
  const QUOTE = /^\s{0,3}>\s?(.*)$/;
  const RULE = /^\s{0,3}([-*_])(\s*\1){2,}\s*$/;
  const SAFE_URL = /^(https?:|mailto:)/i;
  const MAX_DEPTH = 8;

  function node(tag, className) {
    const element = document.createElement(tag);
    if (className) element.className = className;
    return element;
  }

  /* ---- inline ------------------------------------------------------------------------------ */

  function inline(text, parent, depth = 0) {
    if (depth > MAX_DEPTH) {
      parent.append(document.createTextNode(text));
      return;
    }
    const missing = new Set(); /* closers known to be absent from the rest of the text */
    const find = (needle, from) => {
      if (missing.has(needle)) return -1;
      const at = text.indexOf(needle, from);
      if (at < 0) missing.add(needle);
      return at;
    };
    let plain = "";
    const flush = () => {
      if (plain) parent.append(document.createTextNode(plain));
      plain = "";
    };
    let i = 0;
    while (i < text.length) {
      const ch = text[i];
      if (ch === "`") {
        const end = find("`", i + 1);
        if (end > i + 1) {
          flush();
          const code = node("code");
          code.textContent = text.slice(i + 1, end);
          parent.append(code);
          i = end + 1;
          continue;
        }
      } else if ((ch === "*" || ch === "_") && text[i + 1] === ch) {
        const end = find(ch + ch, i + 2);
        if (end > i + 2) {
          flush();
          const strong = node("strong");
          inline(text.slice(i + 2, end), strong, depth + 1);
          parent.append(strong);
          i = end + 2;
          continue;
        }
      } else if ((ch === "*" || ch === "_") && text[i + 1] && text[i + 1] !== " ") {
        const end = find(ch, i + 1);
        if (end > i + 1 && text[end - 1] !== " ") {
          flush();
          const em = node("em");
          inline(text.slice(i + 1, end), em, depth + 1);
          parent.append(em);
          i = end + 1;
          continue;
        }
      } else if (ch === "[") {
        const close = find("](", i + 1);
        const end = close > i ? find(")", close + 2) : -1;
        if (close > i && end > close) {
          const label = text.slice(i + 1, close);
          const url = text.slice(close + 2, end).trim();
          flush();
          if (SAFE_URL.test(url) && !/\s/.test(url)) {
            const link = node("a");
            link.href = url;
            link.target = "_blank";
            link.rel = "noopener noreferrer";
            inline(label, link, depth + 1);
            parent.append(link);
          } else {
            parent.append(document.createTextNode(text.slice(i, end + 1)));
          }
          i = end + 1;
          continue;
        }
      }
      plain += ch;
      i += 1;
    }
    flush();
  }

  function inlineLines(lines, parent) {
    lines.forEach((line, index) => {
      if (index) parent.append(node("br"));
      inline(line, parent);
    });
  }

  /* ---- blocks ------------------------------------------------------------------------------ */

  function renderMarkdown(text, depth = 0) {
    const out = document.createDocumentFragment();
    const lines = String(text).replace(/\r\n?/g, "\n").split("\n");
    let i = 0;
    while (i < lines.length) {
      const line = lines[i];
      const fence = FENCE.exec(line);
      if (fence) {
        const body = [];
        i += 1;
        while (i < lines.length && !lines[i].trim().startsWith(fence[1])) body.push(lines[i++]);
        i += 1; /* the closing fence (or the end) */
        const pre = node("pre");
        const code = node("code");
        if (fence[2]) code.dataset.lang = fence[2];
        code.textContent = body.join("\n");
        pre.append(code);
        out.append(pre);
        continue;
      }
      if (!line.trim()) {
        i += 1;
        continue;
      }
      const heading = HEADING.exec(line);
      if (heading) {
        const h = node(`h${Math.min(6, heading[1].length + 2)}`); /* below the page's own h1 */
        inline(heading[2], h);
        out.append(h);
        i += 1;
        continue;
      }
      if (RULE.test(line)) {
        out.append(node("hr"));
        i += 1;
        continue;
      }
      if (BULLET.test(line) || NUMBERED.test(line)) {
        const numbered = !BULLET.test(line);
        const pattern = numbered ? NUMBERED : BULLET;
        const list = node(numbered ? "ol" : "ul");
        if (numbered) {
          const start = Number(NUMBERED.exec(line)[1]);
          if (start !== 1) list.start = start;
        }
        while (i < lines.length && pattern.test(lines[i])) {
          const match = pattern.exec(lines[i]);
          const item = node("li");
          inline(numbered ? match[2] : match[1], item);
          list.append(item);
          i += 1;
        }
        out.append(list);
        continue;
      }
      if (QUOTE.test(line) && depth < MAX_DEPTH) {
        const quoted = [];
        while (i < lines.length && QUOTE.test(lines[i])) quoted.push(QUOTE.exec(lines[i++])[1]);
        const quote = node("blockquote");
        quote.append(renderMarkdown(quoted.join("\n"), depth + 1));
        out.append(quote);
        continue;
      }
      const paragraph = [];
      while (
        i < lines.length &&
        lines[i].trim() &&
        !FENCE.test(lines[i]) &&
        !HEADING.test(lines[i]) &&
        !RULE.test(lines[i]) &&
        !BULLET.test(lines[i]) &&
        !NUMBERED.test(lines[i]) &&
        !(QUOTE.test(lines[i]) && depth < MAX_DEPTH)
      ) {
        paragraph.push(lines[i++]);
      }
      const p = node("p");
      inlineLines(paragraph, p);
      out.append(p);
    }
    return out;
  }

  window.SSEHub = Object.assign(window.SSEHub || {}, { renderMarkdown });
})();
