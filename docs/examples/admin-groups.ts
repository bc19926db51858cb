/**
 * docs/admin.md, "Consumer groups": every group-level Admin method.
 *
 *   npx tsx docs/examples/admin-groups.ts
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Log, StrandError } from '../../lib/index.js'

async function until(done: () => boolean): Promise<void> {
  while (!done()) await new Promise((resolve) => setTimeout(resolve, 10))
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strand-admin-'))
const log = await Log.open(dir)
try {
  const admin = log.admin()
  const orders = await log.createTopic('orders', { partitions: 2 })
  await orders.append(Array.from({ length: 6 }, (_, i) => ({ partition: i % 2, value: `order ${i}` })))

  // A group with one running member that has read everything.
  const consumer = log.consumer({ groupId: 'billing', clientId: 'billing-1' })
  await consumer.subscribe({ topic: 'orders', fromBeginning: true })
  let handled = 0
  await consumer.run({ eachMessage: async () => { handled++ } })
  await until(() => handled === 6)
  await consumer.commitOffsets()

  // listGroups: groups with members or committed offsets.
  console.log('listGroups:', JSON.stringify(await admin.listGroups()))

  // describeGroups: state, generation, protocol, members and their partitions, offsets and lag.
  const [billing] = await admin.describeGroups(['billing'])
  console.log(`describeGroups: ${billing.groupId} ${billing.state}, generation ${billing.generation}, protocol ${billing.protocol}`)
  for (const m of billing.members) console.log(`  member ${m.memberId} (${m.clientId}): ${m.assignment.map((tp) => `${tp.topic}/${tp.partition}`).join(' ')}`)
  for (const o of billing.offsets) console.log(`  ${o.topic}/${o.partition}: committed ${o.committed}, end ${o.logEndOffset}, lag ${o.lag}`)

  // Offsets of a group can only be changed while it has no members.
  await admin.resetOffsets({ groupId: 'billing', topic: 'orders', earliest: true })
    .catch((err: StrandError) => console.log('resetOffsets while a member runs:', err.code))
  await consumer.close()

  // resetOffsets: every partition of the topic to its log start (earliest) or log end.
  await admin.resetOffsets({ groupId: 'billing', topic: 'orders', earliest: true })
  // fetchOffsets: the committed offsets, with lag (optionally only some topics).
  const show = async (what: string) => console.log(what, (await admin.fetchOffsets({ groupId: 'billing', topics: ['orders'] })).map((o) => `p${o.partition}@${o.committed} (lag ${o.lag})`).join(', '))
  await show('after resetOffsets(earliest):')

  // setOffsets: chosen offsets for chosen partitions (within the log).
  await admin.setOffsets({ groupId: 'billing', topic: 'orders', partitions: [{ partition: 1, offset: 2 }] })
  await show('after setOffsets(p1 → 2):      ')

  // A consumer of the group now starts from those offsets.
  const again = log.consumer({ groupId: 'billing' })
  await again.subscribe({ topic: 'orders' })
  const seen: string[] = []
  await again.run({ eachMessage: async ({ partition, message }) => { seen.push(`${partition}@${message.offset}`) } })
  await until(() => seen.length === 4)
  console.log('the group re-reads:', seen.join(' '))
  await again.close()

  // deleteGroups: removes a group without members and its committed offsets.
  await admin.deleteGroups(['billing'])
  console.log('after deleteGroups:', JSON.stringify(await admin.listGroups()))
  await admin.deleteGroups(['billing']).catch((err: StrandError) => console.log('deleteGroups of an unknown group:', err.code))
} finally {
  await log.close()
  fs.rmSync(dir, { recursive: true, force: true })
}
