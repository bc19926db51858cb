/**
 * docs/groups.md, "What is delivered twice": records handled but not committed are delivered
 * again to the next owner; a member whose session times out is removed while its handler may
 * still run (a zombie), so one record can be handled twice at the same time; heartbeat()
 * keeps a member with a long handler in the group.
 *
 *   npx tsx docs/examples/groups-delivery.ts
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Log, StrandError } from '../../lib/index.js'

async function until(done: () => boolean): Promise<void> {
  while (!done()) await new Promise((resolve) => setTimeout(resolve, 10))
}
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strand-groups-'))
const log = await Log.open(dir)
try {
  const jobs = await log.createTopic('jobs')
  await jobs.append([{ value: 'j0' }, { value: 'j1' }, { value: 'j2' }])

  // 1. Handled but not committed: delivered again. This member commits by hand after j0 only.
  const first = log.consumer({ groupId: 'g1', autoCommit: false })
  await first.subscribe({ topic: 'jobs', fromBeginning: true })
  const handledFirst: string[] = []
  await first.run({
    eachMessage: async ({ topic, partition, message }) => {
      handledFirst.push(String(message.value))
      if (message.offset === 0) await first.commitOffsets([{ topic, partition, offset: message.offset + 1 }])
    },
  })
  await until(() => handledFirst.length === 3)
  await first.close()                              // leaves without committing j1 and j2
  const second = log.consumer({ groupId: 'g1' })
  await second.subscribe({ topic: 'jobs', fromBeginning: true })
  const handledSecond: string[] = []
  await second.run({ eachMessage: async ({ message }) => { handledSecond.push(String(message.value)) } })
  await until(() => handledSecond.length === 2)
  console.log(`1. first member handled ${handledFirst.join(' ')}, committed after j0; the next member got ${handledSecond.join(' ')}`)
  await second.close()

  // 2. A zombie: this member's handler blocks past sessionTimeoutMs without heartbeat().
  let release!: () => void
  const blocked = new Promise<void>((resolve) => { release = resolve })
  const slow = log.consumer({ groupId: 'g2', clientId: 'slow', sessionTimeoutMs: 300 })
  await slow.subscribe({ topic: 'jobs', fromBeginning: true })
  let fenced = false
  slow.on('group.fenced', () => { fenced = true })
  await slow.run({
    eachMessage: async ({ message }) => {
      if (message.offset !== 0) return
      console.log('2. slow: started j0')
      await blocked
      console.log('2. slow: finished j0, while fast had it too')
    },
  })
  await until(() => fenced)
  console.log('2. slow: removed from the group (session timeout), its handler still running')
  const fast = log.consumer({ groupId: 'g2', clientId: 'fast' })
  await fast.subscribe({ topic: 'jobs', fromBeginning: true })
  const handledFast: string[] = []
  await fast.run({ eachMessage: async ({ message }) => { handledFast.push(String(message.value)) } })
  await until(() => handledFast.length === 3)
  console.log(`2. fast: assigned the partition at once, handled ${handledFast.join(' ')}`)
  release()
  // The zombie rejoins at its next poll, as a new member; it cannot commit for a partition it
  // no longer owns.
  await until(() => slow.memberId !== null)
  console.log(`2. slow: rejoined as ${slow.memberId}, assigned: ${slow.assignment().length} partitions`)
  await slow.commitOffsets([{ topic: 'jobs', partition: 0, offset: 1 }])
    .catch((err: StrandError) => console.log('2. slow: commit refused,', err.code))
  await Promise.all([slow.close(), fast.close()])

  // 3. A long handler that calls heartbeat() stays in the group.
  const steady = log.consumer({ groupId: 'g3', sessionTimeoutMs: 1000 })
  steady.on('group.fenced', () => console.log('3. fenced (not expected)'))
  await steady.subscribe({ topic: 'jobs', fromBeginning: true })
  let done = false
  await steady.run({
    eachMessage: async ({ message, heartbeat }) => {
      if (message.offset !== 0) return
      for (let step = 0; step < 8; step++) {      // 1.6 s of work in a 1 s session
        await sleep(200)
        heartbeat()
      }
      done = true
    },
  })
  await until(() => done)
  const [g3] = await log.admin().describeGroups(['g3'])
  console.log(`3. after 1.6 s in one handler: group g3 ${g3.state} with ${g3.members.length} member`)
  await steady.close()
} finally {
  await log.close()
  fs.rmSync(dir, { recursive: true, force: true })
}
