/**
 * Committed offsets in __consumer_offsets: they survive a clean close and a SIGKILL of a real
 * committing process (and the group resumes exactly there); a commit is one appended batch
 * and rewrites no file; many commits of few keys compact (the log start moves, the replayed
 * map is the same); group deletion writes tombstones that survive reopen and compaction; a
 * commit the topic refuses leaves the map as it was.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import type { ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { Log, OFFSETS_TOPIC, type Consumer } from '../../lib/index.js'
import type { GroupCoordinator } from '../../lib/group/coordinator.js'
import { type Child, killHard, rng, spawnChild, waitForLine, withTempDir } from '../helpers.js'
import { type Delivery, OPEN, closeAll, expectCode, fill, offsetsOf, recording, sleep, until } from '../client/support.js'

const COMMITTER = fileURLToPath(new URL('../fixtures/committing-consumer.ts', import.meta.url))
const SEED = Number(process.env.STRAND_TEST_SEED ?? Date.now() % 0x7fffffff)
/** Bound on every wait for a child: tsx start-up on a loaded machine, exit after SIGKILL. */
const CHILD_MS = 20_000

/** The whole map of a coordinator, as group → "topic/partition" → offset, for comparing. */
function snapshot(c: GroupCoordinator): { [group: string]: { [tp: string]: string } } {
  const out: { [group: string]: { [tp: string]: string } } = {}
  for (const g of c.offsets.groups()) {
    out[g] = {}
    for (const [k, v] of c.offsets.offsets(g)) out[g][k.replace('\0', '/')] = `${v.offset}:${v.metadata}`
  }
  return out
}

/** Every .log file of the offsets topic with its bytes. */
function segmentFiles(log: Log): Map<string, Buffer> {
  const dir = log.topic(OFFSETS_TOPIC).partition(0).dir
  return new Map(fs.readdirSync(dir).filter((f) => f.endsWith('.log')).map((f) => [f, fs.readFileSync(path.join(dir, f))]))
}

test('committed offsets and metadata survive a clean close; a new group member resumes exactly there', () => withTempDir(async (dir) => {
  let log = await Log.open(dir, OPEN)
  let before: ReturnType<typeof snapshot>
  try {
    await log.createTopic('t', { partitions: 3 })
    for (let p = 0; p < 3; p++) await fill(log, 't', p, 10)
    const admin = log.admin()
    await admin.setOffsets({ groupId: 'g', topic: 't', partitions: [{ partition: 0, offset: 3 }, { partition: 1, offset: 10 }, { partition: 2, offset: 0 }] })
    const c = await log.groupCoordinator()
    await c.commit('h', null, [{ topic: 't', partition: 1, offset: 7, metadata: 'ünïcode ✓' }])
    await c.commit('h', null, [{ topic: 't', partition: 1, offset: 8, metadata: null }])
    before = snapshot(c)
    assert.equal(before, { g: { 't/0': '3:null', 't/1': '10:null', 't/2': '0:null' }, h: { 't/1': '8:null' } })
  } finally {
    await log.close()
  }
  log = await Log.open(dir, OPEN)
  let consumer: Consumer | undefined
  try {
    assert.ok(log.openedCleanly)
    assert.equal(snapshot(await log.groupCoordinator()), before)
    const got: Delivery[] = []
    consumer = await recording(log, 'resumer', { groupId: 'g', autoOffsetReset: 'none', maxWaitMs: 50 }, got, (c) => c.subscribe({ topic: 't' }))
    await until(() => got.length >= 17, 'resumed delivery')
    await sleep(50)
    assert.equal(offsetsOf(got, 't', 0), [3, 4, 5, 6, 7, 8, 9])
    assert.equal(offsetsOf(got, 't', 1), [])
    assert.equal(offsetsOf(got, 't', 2), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
  } finally {
    await closeAll(log, consumer)
  }
}))

test('acknowledged commits survive SIGKILL of the committing process, and the group resumes exactly at them (child process)', () => withTempDir(async (dir) => {
  const random = rng(SEED)
  const partitions = 2
  const records = 3000
  const setupLog = await Log.open(dir, OPEN)
  try {
    await setupLog.createTopic('work', { partitions })
    for (let p = 0; p < partitions; p++) {
      const part = setupLog.topic('work').partition(p)
      for (let i = 0; i < records; i += 500) await part.append(Array.from({ length: 500 }, (_, j) => ({ value: `${p}:${i + j}` })))
    }
    // The child resets with 'none': every start must come from a committed offset.
    for (let p = 0; p < partitions; p++) await setupLog.admin().setOffsets({ groupId: 'g', topic: 'work', partitions: [{ partition: p, offset: 0 }] })
  } finally {
    await setupLog.close()
  }

  const live = new Set<ChildProcess>()
  let expected = [0, 0]
  const summary: string[] = []
  try {
    for (let round = 0; round < 3; round++) {
      const what = `round ${round} (seed ${SEED})`
      const child: Child = spawnChild(COMMITTER, [dir, 'g', 'work'])
      live.add(child.proc)
      try {
        await waitForLine(child, (l) => l.startsWith('commit '), CHILD_MS, `${what}: first commit`)
        await sleep(20 + Math.floor(random() * 300))
      } finally {
        await killHard(child, CHILD_MS)
        live.delete(child.proc)
      }
      assert.is(child.proc.signalCode, 'SIGKILL', `${what}: killed, not exited: ${child.output()}`)
      const acked = Array.from({ length: partitions }, () => -1)
      for (const line of child.lines) {
        const [kind, p, offset] = line.split(' ')
        if (kind === 'start') assert.is(Number(offset), expected[Number(p)], `${what}: the child resumed partition ${p} at the committed offset`)
        if (kind === 'commit') acked[Number(p)] = Math.max(acked[Number(p)], Number(offset))
      }
      assert.ok(acked.some((o) => o >= 0), `${what}: some commit was acknowledged`)

      const log = await Log.open(dir, OPEN)
      try {
        assert.is(log.openedCleanly, false, `${what}: a killed process leaves no clean-shutdown marker`)
        const c = await log.groupCoordinator()
        expected = Array.from({ length: partitions }, (_, p) => {
          const committed = c.committed('g', 'work', p)?.offset
          assert.ok(committed !== undefined, `${what}: partition ${p} has a committed offset`)
          assert.ok(committed >= acked[p], `${what}: partition ${p} committed ${committed}, below the acknowledged ${acked[p]}`)
          assert.ok(committed <= log.topic('work').partition(p).logEndOffset, `${what}: partition ${p} committed ${committed} past the LEO`)
          return committed
        })
      } finally {
        await log.close()
      }
      summary.push(`${acked.join('/')}→${expected.join('/')}`)
    }
    console.log(`  SIGKILL rounds, acknowledged→committed per partition: ${summary.join(', ')} (seed ${SEED})`)

    // In-process too: a new member of the group starts exactly at the committed offsets.
    const log = await Log.open(dir, OPEN)
    let consumer: Consumer | undefined
    try {
      const got: Delivery[] = []
      consumer = await recording(log, 'after', { groupId: 'g', autoOffsetReset: 'none', maxWaitMs: 50, maxPollRecords: 1 }, got, (c) => c.subscribe({ topic: 'work' }))
      await until(() => [0, 1].every((p) => expected[p] === records || offsetsOf(got, 'work', p).length > 0), 'first deliveries')
      for (let p = 0; p < partitions; p++) {
        if (expected[p] < records) assert.is(offsetsOf(got, 'work', p)[0], expected[p], `partition ${p} resumes at ${expected[p]}`)
      }
    } finally {
      await closeAll(log, consumer)
    }
  } finally {
    for (const proc of live) proc.kill('SIGKILL')
  }
}))

test('a commit is one batch appended to __consumer_offsets: the LEO grows by the partitions committed, no file is rewritten', () => withTempDir(async (dir) => {
  const log = await Log.open(dir, OPEN)
  let consumer: Consumer | undefined
  try {
    await log.createTopic('t', { partitions: 3 })
    consumer = log.consumer({ groupId: 'g' })
    await consumer.commitOffsets([{ topic: 't', partition: 0, offset: 0 }])
    const offsets = log.topic(OFFSETS_TOPIC).partition(0)
    assert.is(offsets.config.flush, 'always', 'commits are durable when they resolve')
    for (let round = 1; round <= 5; round++) {
      const leo = offsets.logEndOffset
      const files = segmentFiles(log)
      await consumer.commitOffsets([0, 1, 2].map((partition) => ({ topic: 't', partition, offset: round * 10 + partition, metadata: `r${round}` })))
      assert.is(offsets.logEndOffset, leo + 3, `round ${round}: three records`)
      const batches = offsets.read(leo).batches
      assert.is(batches.length, 1, `round ${round}: one batch`)
      assert.is(batches[0].count, 3)
      assert.is(offsets.syncedOffset, leo + 3, `round ${round}: fdatasync'ed when the commit resolved`)
      const after = segmentFiles(log)
      for (const [name, bytes] of files) {
        const now = after.get(name)
        assert.ok(now !== undefined && now.length >= bytes.length && now.subarray(0, bytes.length).equals(bytes), `round ${round}: ${name} only grew`)
      }
      assert.is(await consumer.committed('t', 2), round * 10 + 2)
    }
  } finally {
    await closeAll(log, consumer)
  }
}))

test('thousands of commits of a few keys compact: the log start moves, and the replayed map is the same', () => withTempDir(async (dir) => {
  const random = rng(SEED)
  let log = await Log.open(dir, OPEN)
  let expected: ReturnType<typeof snapshot>
  let start: number
  try {
    await log.createTopic('t', { partitions: 2 })
    const c = await log.groupCoordinator()
    const offsets = log.topic(OFFSETS_TOPIC).partition(0)
    const want: { [group: string]: { [tp: string]: string } } = {}
    let n = 0
    // Waves of concurrent commits share fdatasyncs; 10,600 single-record batches pass the
    // threshold (2 × live keys + 10,000 records) once.
    while (n < 10_600) {
      const wave: Array<Promise<void>> = []
      for (let i = 0; i < 400; i++, n++) {
        const group = `g${Math.floor(random() * 3)}`
        const partition = Math.floor(random() * 2)
        const metadata = random() < 0.5 ? null : `m${n}`
        ;(want[group] ??= {})[`t/${partition}`] = `${n}:${metadata}`
        wave.push(c.commit(group, null, [{ topic: 't', partition, offset: n, metadata }]))
      }
      await Promise.all(wave)
    }
    await c.offsets.idle()
    expected = want
    assert.equal(snapshot(c), expected)
    start = offsets.logStartOffset
    assert.ok(start >= 10_000, `the log start moved past the old commits: ${start}`)
    assert.ok(offsets.logEndOffset - start <= 6 + 400, `only the snapshot and later commits are left: ${offsets.logEndOffset - start}`)
  } finally {
    await log.close()
  }
  log = await Log.open(dir, OPEN)
  try {
    const offsets = log.topic(OFFSETS_TOPIC).partition(0)
    assert.is(offsets.logStartOffset, start)
    assert.equal(snapshot(await log.groupCoordinator()), expected, 'replayed from the new log start')
  } finally {
    await log.close()
  }
}))

test('compaction still happens when the live entries carry large metadata (snapshot batches cut by bytes)', () => withTempDir(async (dir) => {
  let log = await Log.open(dir, OPEN)
  let expected: ReturnType<typeof snapshot>
  try {
    await log.createTopic('t', { partitions: 4 })
    const c = await log.groupCoordinator()
    const offsets = log.topic(OFFSETS_TOPIC).partition(0)
    // Each commit fits in a batch on its own; together they are well past maxMessageBytes.
    for (let p = 0; p < 3; p++) await c.commit('big', null, [{ topic: 't', partition: p, offset: p, metadata: String(p).repeat(400 * 1024) }])
    await Promise.all(Array.from({ length: 10_050 }, (_, i) => c.commit('small', null, [{ topic: 't', partition: 3, offset: i }])))
    await c.offsets.idle()
    assert.ok(offsets.logStartOffset > 0, 'compacted')
    assert.ok(offsets.logEndOffset - offsets.logStartOffset < 100, `only the snapshot is left: ${offsets.logEndOffset - offsets.logStartOffset} records`)
    expected = snapshot(c)
  } finally {
    await log.close()
  }
  log = await Log.open(dir, OPEN)
  try {
    const c = await log.groupCoordinator()
    assert.equal(snapshot(c), expected)
    assert.is(c.committed('big', 't', 2)?.metadata?.length, 400 * 1024)
    assert.is(c.committed('small', 't', 3)?.offset, 10_049)
  } finally {
    await log.close()
  }
}))

test('deleteGroups writes tombstones: the group is gone after reopen and after compaction; errors change nothing', () => withTempDir(async (dir) => {
  let log = await Log.open(dir, OPEN)
  let member: Consumer | undefined
  try {
    await log.createTopic('t', { partitions: 2 })
    const admin = log.admin()
    for (const g of ['keep', 'drop']) await admin.setOffsets({ groupId: g, topic: 't', partitions: [{ partition: 0, offset: 0 }, { partition: 1, offset: 0 }] })
    const c = await log.groupCoordinator()
    const offsets = log.topic(OFFSETS_TOPIC).partition(0)

    member = log.consumer({ groupId: 'busy', autoCommit: false, maxWaitMs: 50 })
    await member.subscribe({ topic: 't' })
    await member.run({ eachMessage: () => {} })
    const leo = offsets.logEndOffset
    await expectCode(admin.deleteGroups(['drop', 'busy']), 'GROUP_NOT_EMPTY', 'a group with members')
    await expectCode(admin.deleteGroups(['drop', 'never']), 'UNKNOWN_GROUP', 'a group that never existed')
    await expectCode(admin.deleteGroups(['']), 'INVALID_ARGUMENT', 'empty group id')
    assert.is(offsets.logEndOffset, leo, 'refused deletes wrote nothing')
    assert.ok(c.offsets.groups().includes('drop'))

    await admin.deleteGroups(['drop'])
    assert.is(offsets.logEndOffset, leo + 2, 'one tombstone per committed partition')
    assert.ok(offsets.read(leo).records().every((r) => r.value === null), 'tombstones have null values')
    assert.ok(!c.offsets.groups().includes('drop'))
    assert.equal((await admin.listGroups()).map((g) => g.groupId), ['busy', 'keep'])
    const [d] = await admin.describeGroups(['drop'])
    assert.is(d.state, 'Dead')
    assert.equal(d.offsets, [])
  } finally {
    await closeAll(log, member)
  }
  log = await Log.open(dir, OPEN)
  try {
    const c = await log.groupCoordinator()
    assert.equal(c.offsets.groups(), ['keep'], 'tombstones replay')
    // Push the topic through a compaction; the deleted group must not come back from it.
    const wave = Array.from({ length: 10_100 }, (_, i) => c.commit('keep', null, [{ topic: 't', partition: i % 2, offset: i }]))
    await Promise.all(wave)
    await c.offsets.idle()
    assert.ok(log.topic(OFFSETS_TOPIC).partition(0).logStartOffset > 0, 'compacted')
  } finally {
    await log.close()
  }
  log = await Log.open(dir, OPEN)
  try {
    const c = await log.groupCoordinator()
    assert.equal(c.offsets.groups(), ['keep'])
    assert.is(c.committed('keep', 't', 1)?.offset, 10_099)
    assert.is(c.committed('drop', 't', 0), null)
  } finally {
    await log.close()
  }
}))

test('a commit the offsets topic refuses (metadata past maxMessageBytes) leaves the committed offset as it was', () => withTempDir(async (dir) => {
  let log = await Log.open(dir, OPEN)
  let consumer: Consumer | undefined
  try {
    await log.createTopic('t')
    consumer = log.consumer({ groupId: 'g' })
    await consumer.commitOffsets([{ topic: 't', partition: 0, offset: 0, metadata: 'small' }])
    const offsets = log.topic(OFFSETS_TOPIC).partition(0)
    const leo = offsets.logEndOffset
    await expectCode(consumer.commitOffsets([{ topic: 't', partition: 0, offset: 5, metadata: 'x'.repeat(2 * 1024 * 1024) }]), 'RECORD_TOO_LARGE', 'oversized metadata')
    assert.is(offsets.logEndOffset, leo, 'nothing written')
    const c = await log.groupCoordinator()
    assert.equal(c.committed('g', 't', 0)?.metadata, 'small', 'the map still holds the last written commit')
    assert.is(await consumer.committed('t', 0), 0)
  } finally {
    await closeAll(log, consumer)
  }
  log = await Log.open(dir, OPEN)
  try {
    assert.equal((await log.groupCoordinator()).committed('g', 't', 0)?.metadata, 'small')
  } finally {
    await log.close()
  }
}))

test.run()
