/**
 * docs/consumer.md, "Positions": a consumer without a group (assign, the caller owns the
 * offsets), autoOffsetReset, seek, and pause/resume.
 *
 *   npx tsx docs/examples/consumer-position.ts
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Log, type OffsetReset, StrandError } from '../../lib/index.js'

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strand-consumer-'))
const log = await Log.open(dir)
try {
  const jobs = await log.createTopic('jobs', { partitions: 2 })
  await jobs.append([0, 1, 2].flatMap((i) => [{ partition: 0, value: `a${i}` }, { partition: 1, value: `b${i}` }]))

  // Where a partition without an offset starts: earliest, latest, or an error.
  for (const reset of ['earliest', 'latest', 'none'] as OffsetReset[]) {
    const consumer = log.consumer({ autoOffsetReset: reset, maxWaitMs: 100 })
    consumer.assign([{ topic: 'jobs', partition: 0 }])
    if (reset === 'latest') setTimeout(() => void jobs.append([{ partition: 0, value: 'a3' }]), 50)
    try {
      for await (const m of consumer) {
        console.log(`autoOffsetReset ${reset}: starts at @${m.offset} ${m.value}`)
        break
      }
    } catch (err) {
      console.log(`autoOffsetReset ${reset}:`, (err as StrandError).code)
    }
  }

  // seek: the next record delivered from that partition is the one at the offset.
  const reader = log.consumer({ maxWaitMs: 100 })
  reader.assign([{ topic: 'jobs', partition: 1, offset: 1 }])  // offset: a seek before the start
  const seen: string[] = []
  for await (const m of reader) {
    seen.push(`@${m.offset}`)
    if (seen.length === 2) reader.seek({ topic: 'jobs', partition: 1, offset: 0 })  // or seek('jobs', 1, 0)
    if (seen.length === 5) break
  }
  console.log('seek:', seen.join(' '))

  // pause: no records from those partitions until resume (the position stays where it was).
  const both = log.consumer({ maxWaitMs: 100 })
  both.assign([{ topic: 'jobs', partition: 0, offset: 0 }, { topic: 'jobs', partition: 1, offset: 0 }])
  both.pause([{ topic: 'jobs', partitions: [1] }])
  console.log('paused:', both.paused().map((tp) => `${tp.topic}/${tp.partition}`).join(' '))
  const order: string[] = []
  for await (const m of both) {
    order.push(`${m.partition}@${m.offset}`)
    if (m.partition === 0 && m.offset === 3) both.resume([{ topic: 'jobs' }])
    if (m.partition === 1 && m.offset === 2) break
  }
  console.log('pause/resume:', order.join(' '))

  // Without a group the consumer owns its offsets: it cannot commit, and has none.
  await both.commitOffsets().catch((err: StrandError) => console.log('commitOffsets without a group:', err.code))
  const lonely = log.consumer()
  lonely.assign([{ topic: 'jobs', partition: 0 }])
  console.log('lag without a group:', JSON.stringify(await lonely.lag()))
} finally {
  await log.close()
  fs.rmSync(dir, { recursive: true, force: true })
}
