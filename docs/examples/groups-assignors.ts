/**
 * docs/groups.md, "Assignors": the three built-in strategies on the same group, called
 * directly through the Assignor interface, and how many partitions each moves when a member
 * leaves.
 *
 *   npx tsx docs/examples/groups-assignors.ts
 */
import { type AssignorMember, ASSIGNORS, type TopicPartition } from '../../lib/index.js'

const names = (tps: TopicPartition[]) => tps.map((tp) => `${tp.topic}/${tp.partition}`).join(' ')

// Two topics of four partitions, three members subscribed to both.
const counts = new Map([['clicks', 4], ['views', 4]])
const members: AssignorMember[] = ['m1', 'm2', 'm3'].map((memberId) => ({ memberId, topics: ['clicks', 'views'], owned: [] }))

for (const [name, assignor] of ASSIGNORS) {
  const before = assignor.assign(members, counts)
  console.log(`${name}:`)
  for (const [memberId, tps] of before) console.log(`  ${memberId}: ${names(tps)}`)

  // m1 leaves; the others report what they own (only sticky uses that).
  const survivors = members.slice(1).map((m) => ({ ...m, owned: before.get(m.memberId)! }))
  const after = assignor.assign(survivors, counts)
  let moved = 0
  for (const m of survivors) moved += m.owned.filter((tp) => !after.get(m.memberId)!.some((x) => x.topic === tp.topic && x.partition === tp.partition)).length
  console.log(`  m1 leaves → ${[...after].map(([id, tps]) => `${id}: ${tps.length}`).join(', ')}; partitions taken from m2/m3: ${moved}`)
}
