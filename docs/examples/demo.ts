/**
 * A short tour of strand on a data directory inside the checkout (`.strand-demo/`, or
 * `--dir PATH`). Run it twice: the second run finds the first run's records.
 *
 *   npm run demo
 */
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { Log } from '../../lib/index.js'

const { values } = parseArgs({ options: { dir: { type: 'string' } } })
const dir = values.dir ?? path.join(fileURLToPath(new URL('../..', import.meta.url)), '.strand-demo')

const log = await Log.open(dir)
console.log(`opened ${log.dir} (${log.openedCleanly ? 'clean' : 'first open or recovered'}); topics: ${log.topics().join(', ') || 'none'}`)

const orders = log.hasTopic('orders')
  ? log.topic('orders')
  : await log.createTopic('orders', { partitions: 3, config: { flush: 'always', retentionHours: 24 } })

// Keyed records: the same customer always lands on the same partition (Kafka's murmur2).
const placed = await orders.append([
  { key: 'customer-1', value: JSON.stringify({ item: 'tea', qty: 2 }) },
  { key: 'customer-2', value: JSON.stringify({ item: 'cups', qty: 6 }), headers: { source: 'demo' } },
  { key: 'customer-1', value: JSON.stringify({ item: 'kettle', qty: 1 }) },
])
console.log('appended (fdatasync\'ed, flush: always):', placed.map((p) => `p${p.partition}@${p.offset}`).join(' '))

for (const p of orders.partitions) {
  const records = p.read(p.logStartOffset).records()
  console.log(`partition ${p.id}: offsets [${p.logStartOffset}, ${p.logEndOffset}), ${p.size} bytes in ${p.segmentCount} segment(s)`)
  for (const r of records.slice(-3)) {
    console.log(`  ${r.offset}  ${new Date(r.timestamp).toISOString()}  ${r.key?.toString()} → ${r.value?.toString()}`)
  }
}

const p0 = orders.partition(placed[0].partition)
console.log(`first offset in p${p0.id} at or after the first run's start:`, p0.offsetForTimestamp(0))

// The queue view: a producer batches sends, a consumer group remembers where it stopped.
const producer = log.producer({ lingerMs: 5 })
const sent = await producer.send({ topic: 'orders', messages: [{ key: 'customer-3', value: 'saucer' }, { key: 'customer-4', value: 'spoon' }] })
console.log('producer sent:', sent.map((m) => `p${m.partition}@${m.offset}`).join(' '))

const consumer = log.consumer({ groupId: 'demo', autoOffsetReset: 'earliest' })
await consumer.subscribe({ topics: ['orders'] })
let seen = 0
for await (const m of consumer) {
  seen++
  if (m.partition === sent[sent.length - 1].partition && m.offset === sent[sent.length - 1].offset) break
}
console.log(`consumer group "demo" read ${seen} record(s) since its last run; its offsets are committed on close`)

await log.close()
console.log('closed cleanly; run again to see the records survive')
