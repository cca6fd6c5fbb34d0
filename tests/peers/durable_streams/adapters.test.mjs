// The @durable-streams AI SDK and TanStack AI transport adapters against the
// server at DURABLE_STREAMS_URL: write a generation, read it live until the
// stream closes, replay it, resume from an offset.  The "app server" the
// adapters expect is played in-process (fetchClient); the durable streams are
// the server's.
import { createDurableChatTransport, toDurableStreamResponse } from "@durable-streams/aisdk-transport"
import { stream } from "@durable-streams/client"
import {
  durableStreamConnection,
  materializeSnapshotFromDurableStream,
  toDurableStreamResponse as toTanStackResponse,
} from "@durable-streams/tanstack-ai-transport"
import { describe, expect, test } from "vitest"

const baseUrl = process.env.DURABLE_STREAMS_URL
if (!baseUrl) throw new Error("set DURABLE_STREAMS_URL to the server under test")

const WORDS = ["Durable", " streams", " survive", " a", " dropped", " connection", "."]
const tick = () => new Promise((resolve) => setTimeout(resolve, 15))

function aiSdkChunks() {
  return [
    { type: "start", messageId: "m1" },
    { type: "text-start", id: "t1" },
    ...WORDS.map((delta) => ({ type: "text-delta", id: "t1", delta })),
    { type: "text-end", id: "t1" },
    { type: "finish" },
  ]
}

function tanStackChunks() {
  return [
    { type: "RUN_STARTED", runId: "r1", threadId: "th1" },
    { type: "TEXT_MESSAGE_START", messageId: "m1", role: "assistant" },
    ...WORDS.map((delta) => ({ type: "TEXT_MESSAGE_CONTENT", messageId: "m1", delta })),
    { type: "TEXT_MESSAGE_END", messageId: "m1" },
    { type: "RUN_FINISHED", runId: "r1", threadId: "th1" },
  ]
}

async function* generate(chunks) {
  for (const chunk of chunks) {
    await tick()
    yield chunk
  }
}

async function readAll(readable) {
  const out = []
  const reader = readable.getReader()
  for (;;) {
    const { done, value } = await reader.read()
    if (done) return out
    out.push(value)
  }
}

// Read live from the start; the offset after the first batch that is not the whole stream.
async function midOffset(url, total) {
  const res = await stream({ url, live: "sse", json: true, offset: "-1" })
  return await new Promise((resolve, reject) => {
    let seen = 0
    let found = null
    res.subscribeJson((batch) => {
      seen += batch.items.length
      if (found === null && seen > 0 && seen < total) found = { offset: batch.offset, seen }
    })
    res.closed.then(() => (found ? resolve(found) : reject(new Error("no mid-stream offset"))), reject)
  })
}

async function readFrom(url, offset) {
  const res = await stream({ url, live: false, json: true, offset })
  return await res.json()
}

describe("AI SDK transport (@durable-streams/aisdk-transport)", () => {
  test("a generation is read live until it closes, replayed, and resumed from an offset", async () => {
    const streamUrl = `${baseUrl}/v1/stream/aisdk-${Date.now()}`
    const chunks = aiSdkChunks()
    let write = null
    const appServer = async (url, init) => {
      if (init?.method === "POST") {
        const pending = toDurableStreamResponse({
          source: generate(chunks),
          stream: { writeUrl: streamUrl },
          waitUntil: (task) => (write = task),
        })
        return await pending
      }
      return new Response(null, { status: 200, headers: { Location: streamUrl } })
    }
    const transport = createDurableChatTransport({ api: "http://app.invalid/chat", fetchClient: appServer })
    const live = await transport.sendMessages({
      trigger: "submit-message",
      chatId: "c1",
      messageId: undefined,
      messages: [{ id: "u1", role: "user", parts: [{ type: "text", text: "hi" }] }],
      abortSignal: undefined,
    })
    const mid = midOffset(streamUrl, chunks.length) // a second reader, during the generation
    expect(await readAll(live)).toEqual(chunks)
    await write

    const replay = await transport.reconnectToStream({ chatId: "c1" })
    expect(await readAll(replay)).toEqual(chunks)

    const { offset, seen } = await mid
    expect(await readFrom(streamUrl, offset)).toEqual(chunks.slice(seen))

    const head = await fetch(streamUrl, { method: "HEAD" })
    expect(head.headers.get("stream-closed")).toBe("true")
  })
})

describe("TanStack AI transport (@durable-streams/tanstack-ai-transport)", () => {
  test("a generation is read live until it closes, replayed, and resumed from an offset", async () => {
    const streamUrl = `${baseUrl}/v1/stream/tanstack-${Date.now()}`
    const chunks = tanStackChunks()
    let write = null
    const response = await toTanStackResponse(generate(chunks), {
      stream: { writeUrl: streamUrl },
      waitUntil: (task) => (write = task),
    })
    expect(response.status).toBe(201)
    expect(response.headers.get("location")).toBe(streamUrl)
    const mid = midOffset(streamUrl, chunks.length) // a second reader, during the generation

    const connection = durableStreamConnection({
      sendUrl: "http://app.invalid/chat",
      readUrl: streamUrl,
      initialOffset: "-1",
      emitSnapshotOnSubscribe: false,
    })
    const live = []
    for await (const chunk of connection.subscribe()) live.push(chunk)
    await write
    const stored = await readFrom(streamUrl, "-1")
    expect(live).toEqual(stored)
    expect(stored.map((chunk) => chunk.type)).toEqual(chunks.map((chunk) => chunk.type))
    const text = live.filter((c) => c.type === "TEXT_MESSAGE_CONTENT").map((c) => c.delta).join("")
    expect(text).toBe(WORDS.join(""))

    const snapshot = await materializeSnapshotFromDurableStream({ readUrl: streamUrl })
    expect(snapshot.messages.length).toBeGreaterThan(0)
    expect(JSON.stringify(snapshot.messages)).toContain("survive a dropped connection")

    const { offset, seen } = await mid
    expect(await readFrom(streamUrl, offset)).toEqual(stored.slice(seen))
  })
})
