// The official Durable Streams server conformance suite against the server at
// DURABLE_STREAMS_URL (the published CLI runs no tests: this calls the suite's
// exported runner).  DURABLE_STREAMS_LONG_POLL_MS: the server's long-poll timeout.
import { runConformanceTests } from "@durable-streams/server-conformance-tests"

const baseUrl = process.env.DURABLE_STREAMS_URL
if (!baseUrl) throw new Error("set DURABLE_STREAMS_URL to the server under test")

runConformanceTests({
  baseUrl,
  longPollTimeoutMs: Number(process.env.DURABLE_STREAMS_LONG_POLL_MS ?? "20000"),
})
