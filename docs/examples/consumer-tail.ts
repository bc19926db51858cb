/**
 * docs/consumer.md, "for await" and "Tailing": a consumer at the end of its partitions waits
 * on the partitions' append listeners, so a new record arrives at once, however long
 * maxWaitMs is; minBytes makes a fetch wait (up to maxWaitMs) for more data instead.
 *
 *   npx tsx docs/examples/consumer-tail.ts
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Log } from '../../lib/index.js'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strand-consumer-'))
const log = await Log.open(dir)
try {
  const events = await log.createTopic('events')

  // No group: this consumer reads partition 0 from offset 0, and keeps no offsets anywhere.
  const tail = log.consumer({ maxWaitMs: 30_000 })
  tail.assign([{ topic: 'events', partition: 0, offset: 0 }])

  // Appends from elsewhere in the program, one every 50 ms, each timestamped when written.
  const writer = (async () => {
    for (let i = 0; i < 3; i++) {
      await sleep(50)
      await events.append([{ value: `event ${i}`, timestamp: Date.now() }])
    }
  })()

  // for await: the loop body runs once per record; breaking out (or stop()) ends it.
  let slowest = 0
  for await (const message of tail) {
    slowest = Math.max(slowest, Date.now() - message.timestamp)
    console.log(`${message.topic}/${message.partition} @${message.offset} ${message.value}`)
    if (message.offset === 2) break
  }
  await writer
  console.log(slowest < 1000 ? 'each record arrived within a second (maxWaitMs is 30 s)' : `slow: ${slowest} ms`)

  // minBytes: a fetch with less than minBytes available waits up to maxWaitMs for more.
  for (const minBytes of [1, 1_000_000]) {
    const reader = log.consumer({ minBytes, maxWaitMs: 1000 })
    reader.assign([{ topic: 'events', partition: 0, offset: 0 }])
    const started = Date.now()
    for await (const message of reader) {
      const waited = Date.now() - started
      console.log(`minBytes ${minBytes}: first record after ${waited >= 1000 ? 'maxWaitMs (1 s)' : 'less than maxWaitMs'}; @${message.offset}`)
      break
    }
  }
} finally {
  await log.close()
  fs.rmSync(dir, { recursive: true, force: true })
}
