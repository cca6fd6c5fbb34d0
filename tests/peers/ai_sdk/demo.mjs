// Reads a chat demo answer through the ai package's resume path: DefaultChatTransport's
// reconnectToStream (GET {api}/{id}/stream) with the owner's cookie, then readUIMessageStream.
// Prints one JSON line: the final message's text and reasoning, or {"status": 204}.
// Usage: node demo.mjs BASE_URL ANSWER_ID COOKIE
import { DefaultChatTransport, readUIMessageStream } from "ai";

const [base, answerId, cookie] = process.argv.slice(2);
const transport = new DefaultChatTransport({
  api: `${base}/chat/answers`,
  headers: { Cookie: cookie },
});
const stream = await transport.reconnectToStream({ chatId: answerId });
if (stream === null) {
  console.log(JSON.stringify({ status: 204 }));
} else {
  let last;
  for await (const message of readUIMessageStream({ stream })) last = message;
  const of = (type) => last.parts.filter((p) => p.type === type).map((p) => p.text).join("");
  console.log(JSON.stringify({ id: last.id, text: of("text"), reasoning: of("reasoning") }));
}
