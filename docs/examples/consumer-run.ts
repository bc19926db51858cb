/**
 * docs/consumer.md, "Subscribing and running": a consumer in a group reads its topics with
 * eachMessage, commits what it handled, and the next consumer of the group (here after a
 * reopen of the log) carries on from there.
 *
 *   npx tsx docs/examples/consumer-run.ts
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { once } from 'node:events'
import { Log, type TopicPartition } from '../../lib/index.js'

/** Waits until `done()` is true (the example's stand-in for "until the work is finished"). */
async function until(done: () => boolean): Promise<void> {
  while (!done()) await new Promise((resolve) => setTimeout(resolve, 10))
}
const names = (tps: TopicPartition[]) => tps.map((tp) => `${tp.topic}/${tp.partition}`).join(' ')

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strand-consumer-'))
let log = await Log.open(dir)
try {
  const orders = await log.createTopic('orders', { partitions: 2 })
  await log.createTopic('orders.eu')
  await orders.append([{ key: 'alice', value: 'tea' }, { key: 'bob', value: 'cups' }, { key: 'alice', value: 'kettle' }])

  const consumer = log.consumer({ groupId: 'billing' })
  // Topics by name or by pattern; fromBeginning: start at the log start when the group has no
  // committed offset yet (otherwise autoOffsetReset decides, 'latest' by default).
  await consumer.subscribe({ topics: ['orders', /^orders\.[a-z]+$/], fromBeginning: true })

  let handled = 0
  // run() resolves once the consumer has joined the group and has its partitions; delivery
  // goes on in the background until stop() or close().
  await consumer.run({
    eachMessage: async ({ topic, partition, message }) => {
      console.log(`${topic}/${partition} @${message.offset} ${message.key} → ${message.value}`)
      handled++
    },
  })
  await until(() => handled === 3)
  console.log('assigned:', names(consumer.assignment()))

  // A topic created later that matches a pattern joins the subscription.
  const assigned = once(consumer, 'partitions.assigned')
  await log.createTopic('orders.us')
  console.log('assigned later:', names((await assigned)[0]))
  await log.topic('orders.us').append([{ value: 'saucer' }])
  await until(() => handled === 4)

  // close() stops delivery, commits what was handled and leaves the group.
  await consumer.close()
  await log.close()

  // Later, in this process or another: the group resumes after the last committed offset.
  log = await Log.open(dir)
  await log.topic('orders').append([{ key: 'bob', value: 'spoon' }])
  const next = log.consumer({ groupId: 'billing' })
  await next.subscribe({ topics: ['orders'] })
  let handledNext = 0
  await next.run({
    eachMessage: async ({ topic, partition, message }) => {
      console.log(`after reopen: ${topic}/${partition} @${message.offset} ${message.key} → ${message.value}`)
      handledNext++
    },
  })
  await until(() => handledNext === 1)
  await next.commitOffsets()                      // now, rather than at the next auto-commit
  for (const l of await next.lag()) console.log(`lag ${l.topic}/${l.partition}: end ${l.logEndOffset}, committed ${l.committed}, lag ${l.lag}`)
  await next.close()
} finally {
  await log.close()
  fs.rmSync(dir, { recursive: true, force: true })
}
