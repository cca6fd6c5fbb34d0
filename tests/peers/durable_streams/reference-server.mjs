// The Durable Streams reference server (@durable-streams/server), for the benchmark:
// node reference-server.mjs PORT [DATA_DIR] — in memory, or file-backed (LMDB) with DATA_DIR.
import { DurableStreamTestServer } from "@durable-streams/server"

const port = Number(process.argv[2] ?? "4437")
const dataDir = process.argv[3]
const server = new DurableStreamTestServer({ port, host: "127.0.0.1", dataDir, compression: false })
console.log(`listening on ${await server.start()}`)
const stop = () => server.stop().then(() => process.exit(0))
process.on("SIGTERM", stop)
process.on("SIGINT", stop)
