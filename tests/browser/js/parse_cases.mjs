// Runs ssehub.js's EventStreamParser and ReconnectPolicy on vectors read from stdin (JSON).
//   node parse_cases.mjs PATH/TO/ssehub.js < vectors.json
// Input {cases: [case…], delays: [[attempt, serverRetryMs|null, random]…]}; output
// {outcomes: [outcome…], delays: [ms…]}.  A case is {chunks: [base64…], maxEventSize?, lastEventId?}; an outcome is
// {events: [[type, data, lastEventId]…], topics: [topic…], lastEventId, retry, error}
// (`topics`: each event's `topic`, ssehub's extension the Python parser ignores): the parser is fed the
// chunks then eof(), as tests.support.streams.parse_chunks feeds the Python parser.
import { readFileSync } from "node:fs";

const source = readFileSync(process.argv[2], "utf-8");
const { EventStreamParser, EventTooLargeError, ReconnectPolicy } = await import(
  "data:text/javascript;base64," + Buffer.from(source).toString("base64")
);
const vectors = JSON.parse(readFileSync(0, "utf-8"));
const outcomes = vectors.cases.map((c) => {
  const options = { lastEventId: c.lastEventId || "" };
  if ("maxEventSize" in c) options.maxEventSize = c.maxEventSize;
  const parser = new EventStreamParser(options);
  const events = [];
  const topics = [];
  let error = null;
  try {
    for (const chunk of c.chunks) {
      for (const e of parser.feed(new Uint8Array(Buffer.from(chunk, "base64")))) {
        events.push([e.type, e.data, e.lastEventId]);
        topics.push(e.topic);
      }
    }
    parser.eof();
  } catch (err) {
    if (!(err instanceof EventTooLargeError)) throw err;
    error = "too_large";
  }
  return { events, topics, lastEventId: parser.lastEventId, retry: parser.retry, error };
});
const delays = vectors.delays.map(([attempt, serverRetry, random]) =>
  new ReconnectPolicy({ random: () => random }).nextDelay(attempt, serverRetry),
);
process.stdout.write(JSON.stringify({ outcomes, delays }));
