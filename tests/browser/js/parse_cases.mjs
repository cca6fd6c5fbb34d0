// Runs ssehub.js's EventStreamParser on cases read from stdin (JSON) and prints the outcomes.
//   node parse_cases.mjs PATH/TO/ssehub.js < cases.json
// A case is {chunks: [base64…], maxEventSize?, lastEventId?}; an outcome is
// {events: [[type, data, lastEventId]…], lastEventId, retry, error}: the parser is fed the
// chunks then eof(), as tests.support.streams.parse_chunks feeds the Python parser.
import { readFileSync } from "node:fs";

const source = readFileSync(process.argv[2], "utf-8");
const { EventStreamParser, EventTooLargeError } = await import(
  "data:text/javascript;base64," + Buffer.from(source).toString("base64")
);
const cases = JSON.parse(readFileSync(0, "utf-8"));
const outcomes = cases.map((c) => {
  const options = { lastEventId: c.lastEventId || "" };
  if ("maxEventSize" in c) options.maxEventSize = c.maxEventSize;
  const parser = new EventStreamParser(options);
  const events = [];
  let error = null;
  try {
    for (const chunk of c.chunks) {
      for (const e of parser.feed(new Uint8Array(Buffer.from(chunk, "base64")))) {
        events.push([e.type, e.data, e.lastEventId]);
      }
    }
    parser.eof();
  } catch (err) {
    if (!(err instanceof EventTooLargeError)) throw err;
    error = "too_large";
  }
  return { events, lastEventId: parser.lastEventId, retry: parser.retry, error };
});
process.stdout.write(JSON.stringify(outcomes));
