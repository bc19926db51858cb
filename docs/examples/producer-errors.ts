/**
 * docs/producer.md, "Failures": where a failed batch is reported — to its sends, and again
 * to the next flush() or close() as an AggregateError, which is the only place an acks=0
 * failure shows up.
 *
 *   npx tsx docs/examples/producer-errors.ts
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Log, StrandError } from '../../lib/index.js'

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strand-producer-'))
const log = await Log.open(dir)
try {
  // A topic that refuses batches larger than 1 KiB: an easy way to make a write fail.
  await log.createTopic('small', { config: { maxMessageBytes: 1024 } })
  const big = 'x'.repeat(2000)
  const producer = log.producer()

  // acks 1 or 'all': the send's own promise rejects.
  try {
    await producer.send({ topic: 'small', messages: [{ value: big }] })
  } catch (err) {
    console.log('send rejected:', (err as StrandError).code)
  }

  // acks 0: the promise resolved when the message entered the buffer, before the write failed.
  const [accepted] = await producer.send({ topic: 'small', acks: 0, messages: [{ value: big }] })
  console.log('acks 0 send resolved, offset', accepted.offset)

  // flush() reports every failure since the last flush()/close(): both of the above.
  try {
    await producer.flush()
  } catch (err) {
    const failures = (err as AggregateError).errors as StrandError[]
    console.log(`flush rejected: ${(err as Error).name} of ${failures.length}:`, failures.map((e) => e.code).join(', '))
  }
  await producer.flush()
  console.log('a second flush resolves: each failure is reported once')

  // Arguments are checked before anything is buffered: a bad send changes nothing.
  for (const bad of [{ topic: 'nope', messages: [{ value: 'v' }] }, { topic: 'small', messages: [{ value: 'v', partition: 3 }] }, { topic: 'small', messages: [] }]) {
    await producer.send(bad).catch((err: StrandError) => console.log('refused:', err.code))
  }

  // close() flushes, then refuses further sends.
  await producer.close()
  await producer.send({ topic: 'small', messages: [{ value: 'v' }] }).catch((err: StrandError) => console.log('after close:', err.code))

  // A producer left open is closed by log.close(), which then rejects with what it reported.
  const forgotten = log.producer()
  void forgotten.send({ topic: 'small', acks: 0, messages: [{ value: big }] })
  await log.close().catch((err: Error) => console.log(`log.close rejected: ${err.name}; the log itself closed cleanly`))
  const reopened = await Log.open(dir)
  console.log('reopened, clean:', reopened.openedCleanly)
  await reopened.close()
} finally {
  await log.close().catch(() => {})
  fs.rmSync(dir, { recursive: true, force: true })
}
