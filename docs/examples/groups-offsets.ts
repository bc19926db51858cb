/**
 * docs/groups.md, "Committed offsets": where commits go (the internal topic
 * __consumer_offsets, one batch per commit), how it is compacted, and lag.
 *
 *   npx tsx docs/examples/groups-offsets.ts
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Log, OFFSETS_TOPIC } from '../../lib/index.js'

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strand-groups-'))
let log = await Log.open(dir)
try {
  const orders = await log.createTopic('orders', { partitions: 2 })
  await orders.append(Array.from({ length: 10 }, (_, i) => ({ partition: i % 2, value: `order ${i}` })))

  // One commit of two partitions: one batch of two records, fdatasync'ed before it resolves.
  const consumer = log.consumer({ groupId: 'billing' })
  await consumer.commitOffsets([{ topic: 'orders', partition: 0, offset: 3 }, { topic: 'orders', partition: 1, offset: 5, metadata: 'checkpoint 7' }])
  const internal = log.topic(OFFSETS_TOPIC).partition(0)
  console.log(`${OFFSETS_TOPIC} (flush ${internal.config.flush}): ${internal.read(0).batches.length} batch, on disk below offset ${internal.syncedOffset}`)
  for (const r of internal.read(0).records()) {
    const [group, topic, partition] = String(r.key).split('\0')
    const metadata = r.value!.length > 16 ? `, metadata ${JSON.stringify(r.value!.toString('utf8', 16))}` : ''
    console.log(`  @${r.offset} key (${group}, ${topic}, ${partition}) → offset ${r.value!.readBigInt64BE(0)}${metadata}`)
  }

  // Lag: the partition's log end offset minus the group's committed offset.
  for (const o of await log.admin().fetchOffsets({ groupId: 'billing' })) {
    console.log(`lag orders/${o.partition}: ${o.logEndOffset} − ${o.committed} = ${o.lag} (metadata ${o.metadata})`)
  }

  // Many commits: the topic keeps every one until it holds 10,000 more records than twice the
  // live keys; then the live entries are appended again and the log start moves past the rest.
  const commits = []
  for (let i = 1; i <= 12_000; i++) commits.push(consumer.commitOffsets([{ topic: 'orders', partition: i % 2, offset: 5 }]))
  await Promise.all(commits)                      // concurrent commits share fdatasyncs
  while (internal.logStartOffset === 0) await new Promise((resolve) => setTimeout(resolve, 10))
  console.log(`after 12,000 more commits: log start ${internal.logStartOffset}, log end ${internal.logEndOffset}`)

  // The group's offsets are rebuilt from the topic when the log is opened again.
  await log.close()
  log = await Log.open(dir)
  const offsets = await log.admin().fetchOffsets({ groupId: 'billing' })
  console.log('after reopen:', offsets.map((o) => `orders/${o.partition} committed ${o.committed}`).join(', '))
} finally {
  await log.close()
  fs.rmSync(dir, { recursive: true, force: true })
}
