/**
 * docs/admin.md, "Topics and records": every topic-level Admin method.
 *
 *   npx tsx docs/examples/admin-topics.ts
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Log, StrandError } from '../../lib/index.js'

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strand-admin-'))
const log = await Log.open(dir)
try {
  const admin = log.admin()

  // createTopics: true when every topic was created; existing ones are left alone (false).
  console.log('createTopics:', await admin.createTopics({
    topics: [
      { topic: 'orders', numPartitions: 2, config: { flush: 'always' } },
      { topic: 'scratch' },
    ],
  }))
  console.log('createTopics again:', await admin.createTopics({ topics: [{ topic: 'orders' }] }))

  // listTopics: sorted names; the internal __consumer_offsets only with includeInternal.
  console.log('listTopics:', admin.listTopics())

  const day = (d: number) => Date.UTC(2026, 0, d)
  await log.topic('orders').append([1, 2, 3, 4].map((d) => ({ partition: 0, value: `order of Jan ${d}`, timestamp: day(d) })))

  // describeTopics: partitions (offsets, bytes, segments) and the effective config.
  for (const t of admin.describeTopics({ topics: ['orders'] })) {
    console.log(`describeTopics: ${t.name}, flush ${t.config.flush}, retentionMs ${t.config.retentionMs}`)
    for (const p of t.partitions) console.log(`  p${p.partition}: offsets [${p.logStartOffset}, ${p.logEndOffset}), ${p.segments} segment(s), ${p.size > 0 ? 'some' : 'no'} bytes`)
  }

  // fetchTopicOffsets: per partition, low (log start) and high (log end) offsets.
  console.log('fetchTopicOffsets:', JSON.stringify(admin.fetchTopicOffsets('orders')))

  // fetchTopicOffsetsByTimestamp: the first offset with a timestamp at or after the time
  // (the log end offset when there is none).
  console.log('fetchTopicOffsetsByTimestamp(Jan 3):', JSON.stringify(admin.fetchTopicOffsetsByTimestamp('orders', day(3))))

  // deleteRecords: moves the log start up (offset -1: to the log end); records below go.
  await admin.deleteRecords({ topic: 'orders', partitions: [{ partition: 0, offset: 2 }] })
  console.log('after deleteRecords(before 2):', JSON.stringify(admin.fetchTopicOffsets('orders')[0]))

  // alterTopicConfig: merges into the topic's overrides, persists them, returns the result.
  const config = await admin.alterTopicConfig({ topic: 'orders', config: { retentionMs: -1 } })
  console.log('alterTopicConfig: retentionMs', config.retentionMs, 'flush', config.flush)

  // deleteTopics: every name is checked before any topic is deleted.
  await admin.deleteTopics({ topics: ['scratch', 'nope'] }).catch((err: StrandError) => console.log('deleteTopics with an unknown name:', err.code))
  await admin.deleteTopics({ topics: ['scratch'] })
  console.log('after deleteTopics:', admin.listTopics())
} finally {
  await log.close()
  fs.rmSync(dir, { recursive: true, force: true })
}
