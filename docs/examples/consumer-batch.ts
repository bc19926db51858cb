/**
 * docs/consumer.md, "eachBatch": batches of at most maxPollRecords, resolveOffset and
 * eachBatchAutoResolve, isStale/isRunning, and what happens when a handler throws.
 *
 *   npx tsx docs/examples/consumer-batch.ts
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Log } from '../../lib/index.js'

async function until(done: () => boolean): Promise<void> {
  while (!done()) await new Promise((resolve) => setTimeout(resolve, 10))
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strand-consumer-'))
const log = await Log.open(dir)
try {
  const topic = await log.createTopic('clicks')
  await topic.append(Array.from({ length: 7 }, (_, i) => ({ value: `click ${i}` })))

  // maxPollRecords caps a poll (and so a batch); eachBatchAutoResolve false: only what the
  // handler resolves counts as processed; the rest is delivered again by the next poll.
  const consumer = log.consumer({ groupId: 'stats', maxPollRecords: 3 })
  await consumer.subscribe({ topic: 'clicks', fromBeginning: true })
  let batches = 0
  await consumer.run({
    eachBatchAutoResolve: false,
    eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
      const first = batches++ === 0
      console.log(`batch of ${batch.messages.length} from @${batch.messages[0].offset} (partition end ${batch.highWatermark})`)
      for (const message of batch.messages) {
        if (!isRunning() || isStale()) break          // closing, or the partition was revoked/sought/paused
        if (first && message.offset === 2) break      // pretend to run out of time mid-batch
        resolveOffset(message.offset)                 // processed: a commit may now include it
        heartbeat()                                   // tell the group this member is alive
      }
    },
  })
  await until(() => batches === 3)
  await consumer.commitOffsets()
  console.log('committed', await consumer.committed('clicks', 0))
  await consumer.close()

  // A handler that throws is retried (5 times, backing off from 100 ms); each retry is an event.
  // If it still fails, the consumer stops and emits 'crash'; it does not throw anywhere.
  const flaky = log.consumer({ groupId: 'flaky' })
  flaky.on('handler.retry', (err: Error) => console.log('retrying after:', err.message))
  flaky.on('crash', (err: Error) => console.log('crashed:', err.message))
  await flaky.subscribe({ topic: 'clicks', fromBeginning: true })
  let attempts = 0
  await flaky.run({
    eachMessage: async ({ message }) => {
      if (message.offset === 0 && attempts++ < 2) throw new Error(`attempt ${attempts} failed`)
      if (message.offset === 6) console.log('handled all 7, the first after', attempts, 'attempts')
    },
  })
  await until(() => attempts === 3)
  await flaky.close()
} finally {
  await log.close()
  fs.rmSync(dir, { recursive: true, force: true })
}
