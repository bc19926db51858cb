/**
 * docs/groups.md, "Rebalances": members join and leave a group; partitions they lose are
 * revoked (handler finished, position committed) before anyone else is assigned them, and
 * the new owner starts at the committed offset.
 *
 *   npx tsx docs/examples/groups-rebalance.ts
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { type Consumer, Log, type TopicPartition } from '../../lib/index.js'

async function until(done: () => boolean): Promise<void> {
  while (!done()) await new Promise((resolve) => setTimeout(resolve, 10))
}
const sorted = (tps: TopicPartition[]) => [...tps].sort((x, y) => x.partition - y.partition)
const names = (tps: TopicPartition[]) => sorted(tps).map((tp) => `${tp.topic}/${tp.partition}`).join(' ') || '-'

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strand-groups-'))
const log = await Log.open(dir)
try {
  const events = await log.createTopic('events', { partitions: 4 })
  await events.append([0, 1, 2, 3, 4, 5, 6, 7].map((i) => ({ partition: i % 4, value: `e${i}` })))
  const handled: string[] = []

  async function member(name: string): Promise<Consumer> {
    const consumer = log.consumer({
      groupId: 'workers',
      clientId: name,
      assignor: 'range',                           // the default; every member must use the same
      onPartitionsRevoked: async (tps) => {
        // Called after the handler finished and (auto-commit) the positions were committed.
        const committed = await Promise.all(sorted(tps).map((tp) => consumer.committed(tp.topic, tp.partition)))
        console.log(`${name}: revoked ${names(tps)} (committed ${committed.join(', ')})`)
      },
      onPartitionsAssigned: (tps) => console.log(`${name}: assigned ${names(tps)}`),
    })
    await consumer.subscribe({ topic: 'events', fromBeginning: true })
    await consumer.run({ eachMessage: async ({ partition, message }) => { handled.push(`${name}:${partition}@${message.offset}`) } })
    return consumer
  }

  const a = await member('a')
  await until(() => handled.length === 8)
  console.log('a handled', handled.length, 'records')

  const b = await member('b')
  const [group] = await log.admin().describeGroups(['workers'])
  console.log(`group ${group.groupId}: ${group.state}, generation ${group.generation}, protocol ${group.protocol}`)
  for (const m of group.members) console.log(`  ${m.memberId} (${m.clientId}): ${names(m.assignment)}`)

  // New records go to whichever member owns their partition now.
  await events.append([{ partition: 1, value: 'e8' }, { partition: 3, value: 'e9' }])
  await until(() => handled.length === 10)
  console.log('then:', handled.slice(8).sort().join(' '))

  await a.close()                                  // commits, leaves: its partitions move to b
  console.log('after a left, b has', names(b.assignment()))
  await b.close()
  const [empty] = await log.admin().describeGroups(['workers'])
  console.log(`group ${empty.groupId}: ${empty.state}; committed`, empty.offsets.map((o) => `${o.partition}:${o.committed}`).join(' '))
} finally {
  await log.close()
  fs.rmSync(dir, { recursive: true, force: true })
}
