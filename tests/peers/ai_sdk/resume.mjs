// Drives a useChat backend (the README's recipe) with the ai package's own DefaultChatTransport:
// send a message and read the answer, see 204 (no active run) on reconnect, then start a slow
// answer, leave it, and resume it with reconnectToStream.  Prints one JSON line of findings.
// Usage: node resume.mjs BASE_URL
import { DefaultChatTransport, readUIMessageStream } from "ai";

const base = process.argv[2];
const transport = new DefaultChatTransport({ api: `${base}/api/chat` });

function user(text) {
  return { id: `m-${text.length}`, role: "user", parts: [{ type: "text", text }] };
}

async function lastMessage(stream) {
  let last;
  for await (const message of readUIMessageStream({ stream })) last = message;
  return last;
}

function textOf(message) {
  return message.parts.filter((p) => p.type === "text").map((p) => p.text).join("");
}

const send = (chatId, text, abortSignal) =>
  transport.sendMessages({
    chatId,
    messages: [user(text)],
    trigger: "submit-message",
    messageId: undefined,
    abortSignal,
  });

const findings = {};
const answer = await lastMessage(await send("node-1", "你好"));
findings.answer = textOf(answer);
findings.reconnectAfterEnd = await transport.reconnectToStream({ chatId: "node-1" });

// A slow answer: read its first delta, leave (abort), then resume it like a reloaded page.
const leaving = new AbortController();
const reader = (await send("node-2", "[hang] 慢慢说", leaving.signal)).getReader();
for (;;) {
  const { value, done } = await reader.read();
  if (done || value.type === "text-delta") break;
}
leaving.abort();
const resumed = await transport.reconnectToStream({ chatId: "node-2" });
findings.resumedChunks = [];
const again = resumed.getReader();
for (;;) {
  const { value, done } = await again.read();
  if (done) break;
  findings.resumedChunks.push(value);
  if (value.type === "text-delta") break;
}
await again.cancel();
console.log(JSON.stringify(findings));
