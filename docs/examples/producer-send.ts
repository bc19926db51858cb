/**
 * docs/producer.md, "Sending": send and sendBatch, what a message may hold, and which
 * partition each message lands on.
 *
 *   npx tsx docs/examples/producer-send.ts
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Log, murmur2, toPositive } from '../../lib/index.js'

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strand-producer-'))
const log = await Log.open(dir)
try {
  await log.createTopic('orders', { partitions: 3 })
  await log.createTopic('audit')
  const producer = log.producer()

  // Keys, values and header values may be strings, Buffers or Uint8Arrays; null is allowed.
  const sent = await producer.send({
    topic: 'orders',
    messages: [
      { key: 'customer-1', value: JSON.stringify({ item: 'tea' }), headers: { source: 'web' } },
      { key: Buffer.from('customer-2'), value: new Uint8Array([0x63, 0x75, 0x70, 0x73]) },
      { key: 'customer-1', value: 'kettle', timestamp: Date.UTC(2026, 0, 1) },
      { key: 'customer-3', value: null },                // a null value (Kafka calls it a tombstone)
      { value: 'to partition 2, whatever the key', partition: 2 },
    ],
  })
  for (const m of sent) console.log(`${m.topic} p${m.partition} @${m.offset}`)

  // The same key always lands on the same partition: Kafka's murmur2, so Kafka's Java client
  // would pick the same partition number for the same key and partition count.
  console.log('customer-1 →', toPositive(murmur2(Buffer.from('customer-1'))) % 3)

  // Messages without a key and without a partition stick to one partition per batch; the
  // next batch moves on to the next partition.
  const unkeyed = await producer.send({ topic: 'orders', messages: [{ value: 'a' }, { value: 'b' }] })
  const next = await producer.send({ topic: 'orders', messages: [{ value: 'c' }] })
  console.log('null keys:', [...unkeyed, ...next].map((m) => `p${m.partition}`).join(' '))

  // sendBatch: several topics in one call; one result per message, in input order.
  const both = await producer.sendBatch({
    topicMessages: [
      { topic: 'orders', messages: [{ key: 'customer-2', value: 'saucer' }] },
      { topic: 'audit', messages: [{ value: 'customer-2 ordered a saucer' }] },
    ],
  })
  console.log('sendBatch:', both.map((m) => `${m.topic} p${m.partition} @${m.offset}`).join(', '))

  // What a reader sees: keys and values come back as Buffers, headers as a list.
  const p = log.topic('orders').partition(sent[0].partition)
  for (const r of p.read(0).records()) {
    const headers = r.headers.map((h) => `${h.key}=${h.value}`).join(',')
    console.log(`  p${p.id} @${r.offset} key=${r.key} value=${r.value} headers=[${headers}]`)
  }

  await producer.close()
} finally {
  await log.close()
  fs.rmSync(dir, { recursive: true, force: true })
}
