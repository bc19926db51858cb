/**
 * docs/producer.md, "Batching" and "Acknowledgements": how lingerMs and batchSize group
 * messages into batches, and what acks 0, 1 and 'all' wait for under two flush policies.
 *
 *   npx tsx docs/examples/producer-batching.ts
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Log, type Partition } from '../../lib/index.js'

/** How many batches, of how many records each, the partition holds. */
function batches(p: Partition): string {
  const sizes = p.read(p.logStartOffset, { maxBytes: 1 << 30 }).batches.map((b) => b.count)
  return `${sizes.length} batch(es) [${sizes.join(', ')}]`
}
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strand-producer-'))
const log = await Log.open(dir)
try {
  // lingerMs 0 (the default): sends made in the same event-loop turn share a batch…
  const eager = await log.createTopic('eager')
  const producer = log.producer()
  await Promise.all([1, 2, 3].map((i) => producer.send({ topic: 'eager', messages: [{ value: `m${i}` }] })))
  // …but a caller that awaits each send before the next writes one batch per send.
  for (const i of [4, 5, 6]) await producer.send({ topic: 'eager', messages: [{ value: `m${i}` }] })
  console.log('lingerMs 0:  ', batches(eager.partition(0)))

  // lingerMs N: a batch waits up to N ms for more messages, even across awaits and timers.
  const patient = await log.createTopic('patient')
  const lingering = log.producer({ lingerMs: 500 })
  const acks = []
  for (const i of [1, 2, 3]) {
    acks.push(lingering.send({ topic: 'patient', messages: [{ value: `m${i}` }] }))
    await sleep(10)
  }
  await Promise.all(acks)
  console.log('lingerMs 500: ', batches(patient.partition(0)))

  // batchSize: a batch is written as soon as it holds batchSize bytes, linger or not.
  const sized = await log.createTopic('sized')
  const small = log.producer({ lingerMs: 60_000, batchSize: 200 })
  const value = 'x'.repeat(68)                    // 32 + 68 = 100 bytes in the buffer's accounting
  await Promise.all([1, 2, 3, 4, 5, 6].map(() => small.send({ topic: 'sized', messages: [{ value }] })))
  console.log('batchSize 200:', batches(sized.partition(0)))

  // A message that does not fill a batch lingers; flush() writes it now and waits for its ack.
  const held = small.send({ topic: 'sized', messages: [{ value: 'late' }] })
  await small.flush()
  console.log('after flush:  ', batches(sized.partition(0)), 'offset', (await held)[0].offset)

  // acks: what the promise waits for, under flush 'always' (fdatasync) and 'os' (page cache).
  for (const flush of ['always', 'os'] as const) {
    const topic = await log.createTopic(`acks-${flush}`, { config: { flush } })
    const p = topic.partition(0)
    for (const ack of [0, 1, 'all'] as const) {
      const [m] = await producer.send({ topic: topic.name, acks: ack, messages: [{ value: `acks ${ack}` }] })
      console.log(`flush ${flush.padEnd(6)} acks ${String(ack).padEnd(3)} → offset ${String(m.offset).padStart(2)}; on disk below offset ${p.syncedOffset}`)
      await producer.flush()
    }
  }
  await Promise.all([producer.close(), lingering.close(), small.close()])
} finally {
  await log.close()
  fs.rmSync(dir, { recursive: true, force: true })
}
