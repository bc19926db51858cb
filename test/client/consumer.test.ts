/**
 * Consumer: tailing on append listeners, fetch sizing (minBytes/maxWaitMs, maxPollRecords),
 * position control (seek, pause/resume, offset resets, positions the log no longer has),
 * committing (auto, on close, by hand, not at all without a group), iteration, eachBatch
 * resolution, handler retries, and per-partition order. Real files throughout; every wait is
 * bounded and no assertion depends on how long something took.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { fileURLToPath } from 'node:url'
import { Log, StrandError, type Consumer, type EachBatchPayload } from '../../lib/index.js'
import { bounded, killHard, rng, spawnChild, waitForLine, withTempDir } from '../helpers.js'
import { type Delivery, OPEN, WAIT_MS, assertCovers, closeAll, expectCode, fill, offsetsOf, recording, sleep, until, untilAsync } from './support.js'

const ZERO_WAIT = fileURLToPath(new URL('../fixtures/zero-wait-consumer.ts', import.meta.url))
/** Far beyond any bound a test waits: only an append listener can end such a wait in time. */
const FOREVER_MS = 120_000

/** Resolves with the error of the consumer's next 'crash' event. */
function nextCrash(c: Consumer): Promise<unknown> {
  return new Promise((resolve) => c.once('crash', resolve))
}

async function committedOf(log: Log, groupId: string, topic: string, partition: number): Promise<number | null> {
  const offsets = await log.admin().fetchOffsets({ groupId, topics: [topic] })
  return offsets.find((o) => o.partition === partition)?.committed ?? null
}

// --- tailing ---------------------------------------------------------------------------------

for (const mode of ['assign', 'subscribe'] as const) {
  test(`a consumer at the log end is woken by an append and delivers it (${mode}, maxWaitMs far past the bound)`, () => withTempDir(async (dir) => {
    const log = await Log.open(dir, OPEN)
    let c: Consumer | undefined
    try {
      await log.createTopic('t')
      await fill(log, 't', 0, 3)
      const got: Delivery[] = []
      c = await recording(log, 'tail', { maxWaitMs: FOREVER_MS, ...(mode === 'subscribe' ? { groupId: 'g', autoOffsetReset: 'earliest' } : {}) }, got, (c) =>
        mode === 'assign' ? c.assign([{ topic: 't', partition: 0, offset: 0 }]) : c.subscribe({ topic: 't' }))
      await until(() => got.length >= 3, 'backlog delivered')
      // Idle now: the consumer waits on the partition's append listener.
      await sleep(100)
      await log.topic('t').partition(0).append([{ value: 'late' }])
      await until(() => got.length >= 4, 'the appended record, delivered by a wake-up rather than the 120 s maxWaitMs')
      assert.equal(got.map((d) => [d.offset, d.value]), [[0, 'v0'], [1, 'v1'], [2, 'v2'], [3, 'late']])
      await sleep(50)
      await log.topic('t').partition(0).append([{ value: 'later' }, { value: 'latest' }])
      await until(() => got.length >= 6, 'a second wake-up')
      assert.equal(offsetsOf(got, 't', 0), [0, 1, 2, 3, 4, 5])
    } finally {
      await closeAll(log, c)
    }
  }))
}

test('maxWaitMs 0 polls without starving the event loop: timers still fire and appends arrive (child process)', () => withTempDir(async (dir) => {
  const child = spawnChild(ZERO_WAIT, [dir])
  try {
    await waitForLine(child, (l) => l.startsWith('delivered '), 20_000, 'zero-wait consumer')
    assert.ok(child.lines.includes('timer'), child.output())
    assert.ok(child.lines.includes('delivered 0'), child.output())
  } finally {
    await killHard(child, 20_000)
  }
}))

// --- fetch sizing ----------------------------------------------------------------------------

test('minBytes holds a fetch until that many bytes are there, then delivers them in one batch', () => withTempDir(async (dir) => {
  const log = await Log.open(dir, OPEN)
  let c: Consumer | undefined
  try {
    await log.createTopic('t')
    const p = log.topic('t').partition(0)
    await p.append([{ value: 'x'.repeat(100) }])
    const batchBytes = p.read(0).batches[0].sizeInBytes
    c = log.consumer({ minBytes: 3 * batchBytes, maxWaitMs: FOREVER_MS })
    c.assign([{ topic: 't', partition: 0, offset: 1 }])
    const batches: number[][] = []
    await c.run({ eachBatch: ({ batch }) => { batches.push(batch.messages.map((m) => m.offset)) } })
    await p.append([{ value: 'x'.repeat(100) }])
    await sleep(150)
    assert.equal(batches, [], 'one batch is fewer bytes than minBytes')
    await p.append([{ value: 'x'.repeat(100) }])
    await sleep(150)
    assert.equal(batches, [], 'two batches are fewer bytes than minBytes')
    await p.append([{ value: 'x'.repeat(100) }])
    await until(() => batches.length > 0, 'delivery once minBytes are there')
    assert.equal(batches, [[1, 2, 3]])
  } finally {
    await closeAll(log, c)
  }
}))

test('minBytes that never arrive: the fetch returns what there is after maxWaitMs', () => withTempDir(async (dir) => {
  const log = await Log.open(dir, OPEN)
  let c: Consumer | undefined
  try {
    await log.createTopic('t')
    c = log.consumer({ minBytes: 1 << 30, maxWaitMs: 100 })
    c.assign([{ topic: 't', partition: 0, offset: 0 }])
    const got: number[] = []
    await c.run({ eachMessage: ({ message }) => { got.push(message.offset) } })
    await fill(log, 't', 0, 2)
    await until(() => got.length >= 2, 'delivery after maxWaitMs')
    assert.equal(got, [0, 1])
  } finally {
    await closeAll(log, c)
  }
}))

test('maxPollRecords bounds every eachBatch, and the batches still cover the log in order', () => withTempDir(async (dir) => {
  const log = await Log.open(dir, OPEN)
  let c: Consumer | undefined
  try {
    await log.createTopic('t', { partitions: 2 })
    const t = log.topic('t')
    await t.partition(0).append(Array.from({ length: 50 }, (_, i) => ({ value: `big${i}` })))
    await fill(log, 't', 0, 9)
    await t.partition(1).append(Array.from({ length: 23 }, (_, i) => ({ value: `p1-${i}` })))
    c = log.consumer({ maxPollRecords: 7 })
    c.assign([{ topic: 't', partition: 0, offset: 0 }, { topic: 't', partition: 1, offset: 0 }])
    const sizes: number[] = []
    const got: Delivery[] = []
    await c.run({
      eachBatch: ({ batch }) => {
        sizes.push(batch.messages.length)
        for (const m of batch.messages) got.push({ who: 'c', topic: batch.topic, partition: batch.partition, offset: m.offset, value: '' })
      },
    })
    await until(() => got.length >= 59 + 23, 'everything delivered')
    assert.ok(sizes.every((n) => n >= 1 && n <= 7), `batch sizes ${sizes}`)
    assert.ok(sizes.includes(7), `some batch is full: ${sizes}`)
    assert.equal(offsetsOf(got, 't', 0), Array.from({ length: 59 }, (_, i) => i))
    assert.equal(offsetsOf(got, 't', 1), Array.from({ length: 23 }, (_, i) => i))
  } finally {
    await closeAll(log, c)
  }
}))

// --- position control ------------------------------------------------------------------------

test('seek re-delivers from the offset, as seek(topic, partition, offset) and as seek({ topic, partition, offset })', () => withTempDir(async (dir) => {
  const log = await Log.open(dir, OPEN)
  let c: Consumer | undefined
  try {
    await log.createTopic('t')
    await fill(log, 't', 0, 10)
    const got: Delivery[] = []
    c = await recording(log, 'seeker', { maxWaitMs: 50 }, got, (c) => c.assign([{ topic: 't', partition: 0, offset: 0 }]))
    await until(() => got.length >= 10, 'first pass')
    c.seek('t', 0, 3)
    await until(() => got.length >= 17, 'after seek(t, 0, 3)')
    c.seek({ topic: 't', partition: 0, offset: 7 })
    await until(() => got.length >= 20, 'after seek({ offset: 7 })')
    assert.equal(offsetsOf(got, 't', 0), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 3, 4, 5, 6, 7, 8, 9, 7, 8, 9])
    c.seek('t', 0, 10)
    await log.topic('t').partition(0).append([{ value: 'end' }])
    await until(() => got.length >= 21, 'seek to the log end then tail')
    assert.is(got[20].offset, 10)

    await expectCode(() => c!.seek('t', 0, 12), 'OFFSET_OUT_OF_RANGE', 'seek past the log end')
    await expectCode(() => c!.seek('t', 0, -1), 'INVALID_ARGUMENT', 'negative offset')
    await expectCode(() => c!.seek('t', 0, 1.5), 'INVALID_ARGUMENT', 'fractional offset')
    await expectCode(() => c!.seek('nope', 0, 0), 'UNKNOWN_TOPIC', 'unknown topic')
    await expectCode(() => c!.seek('t', 3, 0), 'UNKNOWN_PARTITION', 'unknown partition')
    await log.admin().deleteRecords({ topic: 't', partitions: [{ partition: 0, offset: 4 }] })
    await expectCode(() => c!.seek('t', 0, 2), 'OFFSET_OUT_OF_RANGE', 'seek below the log start')
    await sleep(50)
    assert.is(got.length, 21, 'failed seeks moved nothing')
  } finally {
    await closeAll(log, c)
  }
}))

test('seek inside a handler stops the rest of the fetched records; delivery restarts at the target', () => withTempDir(async (dir) => {
  const log = await Log.open(dir, OPEN)
  let c: Consumer | undefined
  try {
    await log.createTopic('t')
    await log.topic('t').partition(0).append(Array.from({ length: 10 }, (_, i) => ({ value: `v${i}` })))
    const got: Delivery[] = []
    let sought = false
    c = await recording(log, 'seeker', { maxWaitMs: 50 }, got, (c) => c.assign([{ topic: 't', partition: 0, offset: 0 }]), (d, self) => {
      if (d.offset === 5 && !sought) {
        sought = true
        self.seek('t', 0, 2)
      }
    })
    await until(() => got.length >= 14, 'delivery to the end after the seek')
    assert.equal(offsetsOf(got, 't', 0), [0, 1, 2, 3, 4, 5, 2, 3, 4, 5, 6, 7, 8, 9])
  } finally {
    await closeAll(log, c)
  }
}))

test('a seek before the group assigns the partition applies once it is assigned', () => withTempDir(async (dir) => {
  const log = await Log.open(dir, OPEN)
  let c: Consumer | undefined
  try {
    await log.createTopic('t')
    await fill(log, 't', 0, 10)
    const got: Delivery[] = []
    c = await recording(log, 'early', { groupId: 'g', autoOffsetReset: 'earliest', maxWaitMs: 50 }, got, async (c) => {
      await c.subscribe({ topic: 't' })
      c.seek('t', 0, 6)
    })
    await until(() => got.length >= 4, 'delivery from the seek')
    assert.equal(offsetsOf(got, 't', 0), [6, 7, 8, 9])
  } finally {
    await closeAll(log, c)
  }
}))

test('a paused partition delivers nothing while the others go on; resume delivers its backlog in order', () => withTempDir(async (dir) => {
  const log = await Log.open(dir, OPEN)
  let c: Consumer | undefined
  try {
    await log.createTopic('t', { partitions: 2 })
    const got: Delivery[] = []
    c = await recording(log, 'pauser', { maxWaitMs: 50 }, got, (c) => {
      c.assign([{ topic: 't', partition: 0, offset: 0 }, { topic: 't', partition: 1, offset: 0 }])
      c.pause([{ topic: 't', partitions: [0] }])
    })
    assert.equal(c.paused(), [{ topic: 't', partition: 0 }])
    await fill(log, 't', 0, 3)
    await fill(log, 't', 1, 3)
    await until(() => offsetsOf(got, 't', 1).length >= 3, 'partition 1 delivered')
    await fill(log, 't', 1, 2)
    await until(() => offsetsOf(got, 't', 1).length >= 5, 'partition 1 still delivered')
    assert.equal(offsetsOf(got, 't', 0), [], 'the paused partition delivered nothing')
    c.resume([{ topic: 't', partitions: [0] }])
    assert.equal(c.paused(), [])
    await until(() => offsetsOf(got, 't', 0).length >= 3, 'partition 0 after resume')
    assert.equal(offsetsOf(got, 't', 0), [0, 1, 2])

    // A topic without a partition list pauses all of its partitions.
    c.pause([{ topic: 't' }])
    assert.equal(c.paused().length, 2)
    await fill(log, 't', 0, 1)
    await fill(log, 't', 1, 1)
    await sleep(150)
    assert.is(got.length, 8, 'nothing while the whole topic is paused')
    c.resume([{ topic: 't' }])
    await until(() => got.length >= 10, 'both after resume')
    assert.equal(offsetsOf(got, 't', 0), [0, 1, 2, 3])
    assert.equal(offsetsOf(got, 't', 1), [0, 1, 2, 3, 4, 5])
    await expectCode(() => c!.pause([{ topic: 'nope' }]), 'UNKNOWN_TOPIC', 'pause of an unknown topic')
  } finally {
    await closeAll(log, c)
  }
}))

test('pausing its own partition inside eachMessage does not deliver the handled message again', () => withTempDir(async (dir) => {
  const log = await Log.open(dir, OPEN)
  let c: Consumer | undefined
  try {
    await log.createTopic('t')
    await log.topic('t').partition(0).append(Array.from({ length: 5 }, (_, i) => ({ value: `v${i}` })))
    const got: Delivery[] = []
    let handled2 = false
    c = await recording(log, 'pauser', { maxWaitMs: 50 }, got, (c) => c.assign([{ topic: 't', partition: 0, offset: 0 }]), (d, self) => {
      if (d.offset === 2 && !handled2) {
        self.pause([{ topic: 't' }])
        handled2 = true
      }
    })
    await until(() => handled2, 'the pausing handler ran')
    await sleep(100)
    assert.equal(offsetsOf(got, 't', 0), [0, 1, 2])
    c.resume([{ topic: 't' }])
    await until(() => got.length >= 5, 'the rest after resume')
    await sleep(50)
    assert.equal(offsetsOf(got, 't', 0), [0, 1, 2, 3, 4], 'offset 2 was handled once; resume goes on after it')
  } finally {
    await closeAll(log, c)
  }
}))

// --- offset resets ---------------------------------------------------------------------------

test("autoOffsetReset 'earliest' starts at the log start, 'latest' at the end, without a committed offset", () => withTempDir(async (dir) => {
  const log = await Log.open(dir, OPEN)
  const consumers: Consumer[] = []
  try {
    await log.createTopic('t')
    await fill(log, 't', 0, 5)
    const got: Delivery[] = []
    for (const policy of ['earliest', 'latest'] as const) {
      consumers.push(await recording(log, policy, { groupId: `g-${policy}`, autoOffsetReset: policy, autoCommitIntervalMs: 0, maxWaitMs: 50 }, got, (c) => c.subscribe({ topic: 't' })))
    }
    // Auto-commit commits the position the reset chose: then 'latest' has certainly settled.
    await until(() => got.filter((d) => d.who === 'earliest').length === 5, 'earliest backlog')
    await untilAsync(async () => await committedOf(log, 'g-latest', 't', 0) === 5, 'latest settles at 5')
    await fill(log, 't', 0, 2, 'new')
    await until(() => got.length >= 9, 'new records to both')
    assert.equal(offsetsOf(got, 't', 0, 'earliest'), [0, 1, 2, 3, 4, 5, 6])
    assert.equal(offsetsOf(got, 't', 0, 'latest'), [5, 6])
  } finally {
    await closeAll(log, ...consumers)
  }
}))

test("autoOffsetReset 'none' without a committed offset: NO_OFFSET as a 'crash' event in run mode, thrown by the iterator", () => withTempDir(async (dir) => {
  const log = await Log.open(dir, OPEN)
  let c: Consumer | undefined
  let d: Consumer | undefined
  let e: Consumer | undefined
  try {
    await log.createTopic('t')
    await fill(log, 't', 0, 3)
    c = log.consumer({ groupId: 'g', autoOffsetReset: 'none', maxWaitMs: 50 })
    await c.subscribe({ topic: 't' })
    const crashed = nextCrash(c)
    const got: number[] = []
    await c.run({ eachMessage: ({ message }) => { got.push(message.offset) } })
    const err = await bounded(crashed, WAIT_MS, 'crash event')
    assert.instance(err, StrandError)
    assert.is((err as StrandError).code, 'NO_OFFSET')
    assert.equal(got, [])

    d = log.consumer({ autoOffsetReset: 'none', maxWaitMs: 50 })
    d.assign([{ topic: 't', partition: 0 }])
    await expectCode(bounded((async () => { for await (const m of d!) got.push(m.offset) })(), WAIT_MS, 'iterator'), 'NO_OFFSET', 'iterator')
    assert.equal(got, [])

    // With a committed offset, 'none' resumes there.
    await c.close()
    await log.admin().setOffsets({ groupId: 'g', topic: 't', partitions: [{ partition: 0, offset: 1 }] })
    const resumed: Delivery[] = []
    e = await recording(log, 'resumer', { groupId: 'g', autoOffsetReset: 'none', maxWaitMs: 50 }, resumed, (c) => c.subscribe({ topic: 't' }))
    await until(() => resumed.length >= 2, 'resumed from the committed offset')
    assert.equal(offsetsOf(resumed, 't', 0), [1, 2])
  } finally {
    await closeAll(log, c, d, e)
  }
}))

test('a committed position below the log start (after deleteRecords) is reset by the policy', () => withTempDir(async (dir) => {
  const log = await Log.open(dir, OPEN)
  const consumers: Consumer[] = []
  try {
    await log.createTopic('t')
    await fill(log, 't', 0, 10)
    const admin = log.admin()
    for (const policy of ['earliest', 'latest', 'none']) await admin.setOffsets({ groupId: `g-${policy}`, topic: 't', partitions: [{ partition: 0, offset: 2 }] })
    await admin.deleteRecords({ topic: 't', partitions: [{ partition: 0, offset: 5 }] })
    const got: Delivery[] = []
    const none = log.consumer({ groupId: 'g-none', autoOffsetReset: 'none', maxWaitMs: 50 })
    consumers.push(none)
    await none.subscribe({ topic: 't' })
    const crashed = nextCrash(none)
    await none.run({ eachMessage: () => { assert.unreachable('none delivers nothing') } })
    for (const policy of ['earliest', 'latest'] as const) {
      consumers.push(await recording(log, policy, { groupId: `g-${policy}`, autoOffsetReset: policy, autoCommitIntervalMs: 0, maxWaitMs: 50 }, got, (c) => c.subscribe({ topic: 't' })))
    }
    const err = await bounded(crashed, WAIT_MS, "'none' crash")
    assert.is((err as StrandError).code, 'NO_OFFSET')
    assert.match((err as Error).message, 'outside')
    await until(() => got.length >= 5, 'earliest from the new log start')
    await untilAsync(async () => await committedOf(log, 'g-latest', 't', 0) === 10, 'latest resets to the end')
    await fill(log, 't', 0, 1, 'new')
    await until(() => got.length >= 7, 'the new record to both')
    assert.equal(offsetsOf(got, 't', 0, 'earliest'), [5, 6, 7, 8, 9, 10])
    assert.equal(offsetsOf(got, 't', 0, 'latest'), [10])
    assert.is(await committedOf(log, 'g-none', 't', 0), 2, "'none' changed nothing")
  } finally {
    await closeAll(log, ...consumers)
  }
}))

test('a live position that falls below the log start resumes at the new start (earliest)', () => withTempDir(async (dir) => {
  const log = await Log.open(dir, OPEN)
  let c: Consumer | undefined
  try {
    await log.createTopic('t')
    await fill(log, 't', 0, 10)
    const got: Delivery[] = []
    c = await recording(log, 'lagging', { autoOffsetReset: 'earliest', maxWaitMs: 50 }, got, (c) => c.assign([{ topic: 't', partition: 0, offset: 0 }]), (d, self) => {
      if (d.offset === 1) self.pause([{ topic: 't' }])
    })
    await until(() => got.length >= 2, 'the first two')
    await sleep(50)
    await log.admin().deleteRecords({ topic: 't', partitions: [{ partition: 0, offset: 6 }] })
    c.resume([{ topic: 't' }])
    await until(() => got.length >= 6, 'the rest from the new start')
    assert.equal(offsetsOf(got, 't', 0), [0, 1, 6, 7, 8, 9])
  } finally {
    await closeAll(log, c)
  }
}))

test('a position past the log end after a truncation is reset by the policy instead of waiting there', () => withTempDir(async (dir) => {
  const log = await Log.open(dir, OPEN)
  let c: Consumer | undefined
  let d: Consumer | undefined
  try {
    await log.createTopic('t')
    await fill(log, 't', 0, 10)
    const got: Delivery[] = []
    c = await recording(log, 'earliest', { autoOffsetReset: 'earliest', maxWaitMs: 50 }, got, (c) => c.assign([{ topic: 't', partition: 0, offset: 0 }]))
    d = log.consumer({ autoOffsetReset: 'none', maxWaitMs: 50 })
    d.assign([{ topic: 't', partition: 0, offset: 10 }])
    const crashed = nextCrash(d)
    await d.run({ eachMessage: () => {} })
    await until(() => got.length >= 10, 'first pass')
    await sleep(100)
    await log.topic('t').partition(0).truncateTo(5)
    await fill(log, 't', 0, 2, 'after')
    await until(() => got.length >= 17, 'a second pass from the log start')
    assert.equal(offsetsOf(got, 't', 0).slice(10), [0, 1, 2, 3, 4, 5, 6])
    assert.equal(got.slice(15).map((x) => x.value), ['after0', 'after1'])
    assert.is(((await bounded(crashed, WAIT_MS, "'none' crash")) as StrandError).code, 'NO_OFFSET')
  } finally {
    await closeAll(log, c, d)
  }
}))

// --- committing ------------------------------------------------------------------------------

test('auto-commit commits the position after handled messages; lag() reads LEO − committed', () => withTempDir(async (dir) => {
  const log = await Log.open(dir, OPEN)
  let c: Consumer | undefined
  try {
    await log.createTopic('t')
    await fill(log, 't', 0, 10)
    const got: Delivery[] = []
    c = await recording(log, 'auto', { groupId: 'g', autoOffsetReset: 'earliest', autoCommitIntervalMs: 0, maxWaitMs: 50 }, got, (c) => c.subscribe({ topic: 't' }))
    await until(() => got.length >= 10, 'delivery')
    await untilAsync(async () => await c!.committed('t', 0) === 10, 'auto-commit of 10')
    assert.is(await committedOf(log, 'g', 't', 0), 10)
    assert.equal(await c.lag(), [{ topic: 't', partition: 0, logEndOffset: 10, committed: 10, lag: 0 }])
    await fill(log, 't', 0, 3)
    await untilAsync(async () => await c!.committed('t', 0) === 13, 'auto-commit of 13')
  } finally {
    await closeAll(log, c)
  }
}))

test('auto-commit commits on close what the interval had not reached yet; autoCommit false never commits', () => withTempDir(async (dir) => {
  const log = await Log.open(dir, OPEN)
  let c: Consumer | undefined
  let off: Consumer | undefined
  try {
    await log.createTopic('t')
    const got: Delivery[] = []
    c = await recording(log, 'slow-commit', { groupId: 'g', autoOffsetReset: 'earliest', autoCommitIntervalMs: 600_000, maxWaitMs: 50 }, got, (c) => c.subscribe({ topic: 't' }))
    off = await recording(log, 'no-commit', { groupId: 'g-off', autoOffsetReset: 'earliest', autoCommit: false, maxWaitMs: 50 }, got, (c) => c.subscribe({ topic: 't' }))
    // The first poll commits (nothing was committed yet): the reset position, 0.
    await untilAsync(async () => await c!.committed('t', 0) === 0, 'first auto-commit')
    await fill(log, 't', 0, 5)
    await until(() => got.length >= 10, 'delivery to both')
    await sleep(100)
    assert.is(await c.committed('t', 0), 0, 'the interval has not passed')
    await c.close()
    await off.close()
    assert.is(await committedOf(log, 'g', 't', 0), 5, 'close committed the position')
    assert.is(await committedOf(log, 'g-off', 't', 0), null, 'autoCommit false committed nothing')
  } finally {
    await closeAll(log, c, off)
  }
}))

test('commitOffsets commits given offsets (with metadata) or, without arguments, the handled position; bad offsets change nothing', () => withTempDir(async (dir) => {
  const log = await Log.open(dir, OPEN)
  let c: Consumer | undefined
  try {
    await log.createTopic('t')
    await fill(log, 't', 0, 10)
    const got: Delivery[] = []
    c = await recording(log, 'manual', { groupId: 'g', autoOffsetReset: 'earliest', autoCommit: false, maxWaitMs: 50 }, got, (c) => c.subscribe({ topic: 't' }))
    await until(() => got.length >= 10, 'delivery')
    await c.commitOffsets([{ topic: 't', partition: 0, offset: 4, metadata: 'half way' }])
    assert.is(await c.committed('t', 0), 4)
    const [o] = await log.admin().fetchOffsets({ groupId: 'g' })
    assert.equal(o, { topic: 't', partition: 0, committed: 4, logEndOffset: 10, lag: 6, metadata: 'half way' })
    await c.commitOffsets()
    assert.is(await c.committed('t', 0), 10)

    await expectCode(c.commitOffsets([{ topic: 't', partition: 0, offset: -1 }]), 'INVALID_ARGUMENT', 'negative offset')
    await expectCode(c.commitOffsets([{ topic: 'nope', partition: 0, offset: 1 }]), 'UNKNOWN_TOPIC', 'unknown topic')
    await expectCode(c.commitOffsets([{ topic: 't', partition: 1, offset: 1 }]), 'UNKNOWN_PARTITION', 'unknown partition')
    await expectCode(c.commitOffsets([{ topic: 't', partition: 0, offset: 1, metadata: 7 as unknown as string }]), 'INVALID_ARGUMENT', 'metadata not a string')
    await expectCode(c.commitOffsets({} as never), 'INVALID_ARGUMENT', 'not an array')
    assert.is(await c.committed('t', 0), 10, 'failed commits changed nothing')
  } finally {
    await closeAll(log, c)
  }
}))

test('a consumer without a groupId owns its offsets: commitOffsets rejects, committed() is null, no offsets topic is made', () => withTempDir(async (dir) => {
  const log = await Log.open(dir, OPEN)
  let c: Consumer | undefined
  let g: Consumer | undefined
  try {
    await log.createTopic('t')
    await fill(log, 't', 0, 3)
    const got: Delivery[] = []
    c = await recording(log, 'free', { maxWaitMs: 50 }, got, (c) => c.assign([{ topic: 't', partition: 0, offset: 1 }]))
    await until(() => got.length >= 2, 'delivery')
    assert.equal(offsetsOf(got, 't', 0), [1, 2])
    await expectCode(c.commitOffsets(), 'INVALID_ARGUMENT', 'commitOffsets()')
    await expectCode(c.commitOffsets([{ topic: 't', partition: 0, offset: 2 }]), 'INVALID_ARGUMENT', 'commitOffsets([..])')
    assert.is(await c.committed('t', 0), null)
    assert.is(c.groupId, null)
    await expectCode(log.consumer().subscribe({ topic: 't' }), 'INVALID_ARGUMENT', 'subscribe without a group')
    await c.close()
    assert.equal(log.admin().listTopics({ includeInternal: true }), ['t'], 'nothing was committed anywhere')

    g = log.consumer({ groupId: 'g' })
    await g.subscribe({ topic: 't' })
    await expectCode(() => g!.assign([{ topic: 't', partition: 0 }]), 'INVALID_ARGUMENT', 'assign after subscribe')
    await expectCode(g.subscribe({ topic: 'nope' }), 'UNKNOWN_TOPIC', 'subscribe to an unknown topic')
    await expectCode(g.subscribe({ topics: [] }), 'INVALID_ARGUMENT', 'empty subscription')
    await expectCode(g.run({} as never), 'INVALID_ARGUMENT', 'run without a handler')
  } finally {
    await closeAll(log, c, g)
  }
}))

test('an assigned consumer with a groupId starts at the group\'s committed offset on a freshly opened log, and commits there', () => withTempDir(async (dir) => {
  let log = await Log.open(dir, OPEN)
  try {
    await log.createTopic('t')
    await fill(log, 't', 0, 10)
    await log.admin().setOffsets({ groupId: 'g', topic: 't', partitions: [{ partition: 0, offset: 4 }] })
  } finally {
    await log.close()
  }
  log = await Log.open(dir, OPEN)
  let c: Consumer | undefined
  try {
    // Nothing has loaded the group coordinator in this process yet.
    const got: Delivery[] = []
    c = await recording(log, 'assigned', { groupId: 'g', autoOffsetReset: 'earliest', maxWaitMs: 50 }, got, (c) => c.assign([{ topic: 't', partition: 0 }]))
    await until(() => got.length >= 6, 'delivery from the committed offset')
    assert.equal(offsetsOf(got, 't', 0), [4, 5, 6, 7, 8, 9])
    await c.close()
    assert.is(await committedOf(log, 'g', 't', 0), 10)
  } finally {
    await closeAll(log, c)
  }
}))

// --- iteration, batches, handler failures ----------------------------------------------------

test('for await delivers in order, tails new appends, and commits up to the message before the one it stopped at', () => withTempDir(async (dir) => {
  const log = await Log.open(dir, OPEN)
  const c = log.consumer({ groupId: 'g', autoOffsetReset: 'earliest', autoCommitIntervalMs: 0, maxWaitMs: 50 })
  try {
    await log.createTopic('t')
    await fill(log, 't', 0, 10)
    await c.subscribe({ topic: 't' })
    const got: Array<[number, string]> = []
    await bounded((async () => {
      for await (const m of c) {
        assert.is(m.topic, 't')
        assert.is(m.partition, 0)
        got.push([m.offset, m.value!.toString()])
        if (m.offset === 9) void log.topic('t').partition(0).append([{ value: 'tail' }])
        if (m.offset === 10) break
      }
    })(), WAIT_MS, 'iteration')
    assert.equal(got.map(([o]) => o), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
    assert.equal(got[10], [10, 'tail'])
    // Leaving the loop closed the consumer; the message it left at counts as not yet consumed.
    await expectCode(c.subscribe({ topic: 't' }), 'LOG_CLOSED', 'the consumer is closed')
    assert.is(await committedOf(log, 'g', 't', 0), 10)
  } finally {
    await closeAll(log, c)
  }
}))

test('eachBatch: resolveOffset of part of a batch re-delivers the rest; a seek makes the batch stale and its resolves void', () => withTempDir(async (dir) => {
  const log = await Log.open(dir, OPEN)
  let c: Consumer | undefined
  try {
    await log.createTopic('t')
    await log.topic('t').partition(0).append(Array.from({ length: 10 }, (_, i) => ({ value: `v${i}` })))
    c = log.consumer({ groupId: 'g', autoOffsetReset: 'earliest', autoCommitIntervalMs: 0, maxWaitMs: 50 })
    await c.subscribe({ topic: 't' })
    const calls: Array<{ first: number, last: number, staleBefore: boolean, staleAfter: boolean, highWatermark: number }> = []
    const step = async (payload: EachBatchPayload): Promise<void> => {
      const { batch } = payload
      const n = calls.length
      const call = { first: batch.messages[0].offset, last: batch.messages[batch.messages.length - 1].offset, staleBefore: payload.isStale(), staleAfter: false, highWatermark: batch.highWatermark }
      calls.push(call)
      if (n === 0) payload.resolveOffset(2) // handled 0..2 only
      else if (n === 1) {
        c!.seek('t', 0, 7)
        call.staleAfter = payload.isStale()
        payload.resolveOffset(9) // void: the batch is stale
      } else payload.resolveOffset(call.last)
      assert.ok(payload.isRunning())
    }
    await c.run({ eachBatch: step, eachBatchAutoResolve: false })
    await until(() => calls.length >= 3, 'three batches')
    await untilAsync(async () => await c!.committed('t', 0) === 10, 'commit of the last batch')
    assert.equal(calls.map((x) => [x.first, x.last]), [[0, 9], [3, 9], [7, 9]])
    assert.equal(calls.map((x) => [x.staleBefore, x.staleAfter]), [[false, false], [false, true], [false, false]])
    assert.ok(calls.every((x) => x.highWatermark === 10))
  } finally {
    await closeAll(log, c)
  }
}))

test('eachBatch auto-resolves the whole batch when the handler returns', () => withTempDir(async (dir) => {
  const log = await Log.open(dir, OPEN)
  let c: Consumer | undefined
  try {
    await log.createTopic('t')
    await log.topic('t').partition(0).append(Array.from({ length: 10 }, (_, i) => ({ value: `v${i}` })))
    c = log.consumer({ groupId: 'g', autoOffsetReset: 'earliest', autoCommitIntervalMs: 0, maxWaitMs: 50 })
    await c.subscribe({ topic: 't' })
    const firsts: number[] = []
    await c.run({ eachBatch: ({ batch }) => { firsts.push(batch.messages[0].offset) } })
    await untilAsync(async () => await c!.committed('t', 0) === 10, 'commit of the batch')
    await fill(log, 't', 0, 1)
    await until(() => firsts.length >= 2, 'next batch')
    assert.equal(firsts, [0, 10])
  } finally {
    await closeAll(log, c)
  }
}))

test('a handler that throws is retried and the consumer goes on; nothing is skipped', () => withTempDir(async (dir) => {
  const log = await Log.open(dir, OPEN)
  let c: Consumer | undefined
  try {
    await log.createTopic('t')
    await fill(log, 't', 0, 6)
    const got: Delivery[] = []
    let thrown = false
    c = log.consumer({ maxWaitMs: 50 })
    const retries: unknown[] = []
    c.on('handler.retry', (err) => retries.push(err))
    c.assign([{ topic: 't', partition: 0, offset: 0 }])
    await c.run({
      eachMessage: ({ message }) => {
        got.push({ who: 'c', topic: 't', partition: 0, offset: message.offset, value: '' })
        if (message.offset === 3 && !thrown) {
          thrown = true
          throw new Error('transient')
        }
      },
    })
    await until(() => got.length >= 7, 'delivery')
    assert.equal(offsetsOf(got, 't', 0), [0, 1, 2, 3, 3, 4, 5])
    assert.is(retries.length, 1)
    assert.is((retries[0] as Error).message, 'transient')
  } finally {
    await closeAll(log, c)
  }
}))

test("a handler that keeps throwing crashes the consumer after its retries; the failing message is not committed", () => withTempDir(async (dir) => {
  const log = await Log.open(dir, OPEN)
  let c: Consumer | undefined
  try {
    await log.createTopic('t')
    await fill(log, 't', 0, 6)
    c = log.consumer({ groupId: 'g', autoOffsetReset: 'earliest', maxWaitMs: 50 })
    let retries = 0
    c.on('handler.retry', () => retries++)
    await c.subscribe({ topic: 't' })
    const crashed = nextCrash(c)
    let attempts = 0
    await c.run({
      eachMessage: ({ message }) => {
        if (message.offset === 3) {
          attempts++
          throw new Error('poison')
        }
      },
    })
    const err = await bounded(crashed, WAIT_MS, 'crash')
    assert.is((err as Error).message, 'poison')
    assert.is(attempts, retries + 1, 'every retry is announced')
    assert.ok(retries >= 1)
    await c.close()
    assert.is(await committedOf(log, 'g', 't', 0), 3, 'the position after the last handled message')
  } finally {
    await closeAll(log, c)
  }
}))

test('per partition, records arrive once each and in offset order, under random batch sizes, fetch sizes and handler delays', () => withTempDir(async (dir) => {
  const seed = Number(process.env.STRAND_TEST_SEED ?? Date.now() % 0x7fffffff)
  const random = rng(seed)
  const delays = rng(seed + 1)
  const log = await Log.open(dir, OPEN)
  let c: Consumer | undefined
  try {
    const partitions = 3
    await log.createTopic('t', { partitions })
    const t = log.topic('t')
    const written: string[][] = Array.from({ length: partitions }, () => [])
    const appendSome = async (batches: number): Promise<void> => {
      for (let b = 0; b < batches; b++) {
        const p = Math.floor(random() * partitions)
        const n = 1 + Math.floor(random() * 20)
        const values = Array.from({ length: n }, (_, i) => `${p}:${written[p].length + i}:${'x'.repeat(Math.floor(random() * 60))}`)
        await t.partition(p).append(values.map((value) => ({ value })))
        written[p].push(...values)
      }
    }
    await appendSome(30)
    const got: Delivery[] = []
    c = await recording(log, 'ordered', { maxPollRecords: 13, maxBytesPerPartition: 512, maxWaitMs: 20 }, got,
      (c) => c.assign(Array.from({ length: partitions }, (_, partition) => ({ topic: 't', partition, offset: 0 }))),
      async () => { if (delays() < 0.1) await sleep(Math.floor(delays() * 3)) })
    await appendSome(30)
    const total = () => written.reduce((s, w) => s + w.length, 0)
    await until(() => got.length >= total(), `everything delivered (seed ${seed})`)
    await sleep(50)
    for (let p = 0; p < partitions; p++) {
      assert.equal(offsetsOf(got, 't', p), written[p].map((_, i) => i), `partition ${p} order (seed ${seed})`)
      assert.equal(got.filter((d) => d.partition === p).map((d) => d.value), written[p], `partition ${p} values (seed ${seed})`)
    }
  } finally {
    await closeAll(log, c)
  }
}))

test('deleting a topic the consumer reads does not stop it: the other topics go on', () => withTempDir(async (dir) => {
  const log = await Log.open(dir, OPEN)
  let c: Consumer | undefined
  try {
    await log.createTopic('t')
    await log.createTopic('u')
    await fill(log, 't', 0, 40)
    await fill(log, 'u', 0, 40)
    const got: Delivery[] = []
    const crashes: unknown[] = []
    c = await recording(log, 'both', { groupId: 'g', autoOffsetReset: 'earliest', maxPollRecords: 1, maxWaitMs: 20 }, got, (c) => {
      c.on('crash', (err) => crashes.push(err))
      return c.subscribe({ topics: ['t', 'u'] })
    }, () => sleep(1))
    await until(() => got.length >= 5, 'started')
    await log.admin().deleteTopics({ topics: ['u'] })
    await until(() => offsetsOf(got, 't', 0).length >= 40 || crashes.length > 0, 'all of t')
    assert.equal(crashes, [])
    assertCovers(offsetsOf(got, 't', 0), 0, 40, 't')
    await until(() => c!.assignment().length === 1, 'u revoked')
    assert.equal(c.assignment(), [{ topic: 't', partition: 0 }])
  } finally {
    await closeAll(log, c)
  }
}))

test('consumer options are checked when the consumer is made', async () => withTempDir(async (dir) => {
  const log = await Log.open(dir, OPEN)
  try {
    const bad: Array<[string, object]> = [
      ['groupId', { groupId: '' }], ['groupId', { groupId: 'a\0b' }], ['clientId', { clientId: 5 }],
      ['sessionTimeoutMs', { sessionTimeoutMs: 0 }], ['autoCommit', { autoCommit: 'yes' }],
      ['autoOffsetReset', { autoOffsetReset: 'smallest' }], ['minBytes', { minBytes: -1 }],
      ['maxWaitMs', { maxWaitMs: 1.5 }], ['maxPollRecords', { maxPollRecords: 0 }], ['maxBytesPerPartition', { maxBytesPerPartition: 0 }],
    ]
    for (const [name, options] of bad) {
      const err = await expectCode(() => log.consumer(options), 'INVALID_ARGUMENT', name)
      assert.match(err.message, `\`${name}\``)
    }
  } finally {
    await log.close()
  }
}))

test('Log.close with several members of one group running: as each leaves, the rebalance hands nothing to the others, which are closing too', () => withTempDir(async (dir) => {
  for (let round = 0; round < 5; round++) {
    const log = await Log.open(dir, OPEN)
    if (!log.hasTopic('t')) await log.createTopic('t', { partitions: 4 })
    await fill(log, 't', 0, 10)
    const members: Consumer[] = []
    const seen: number[] = []
    for (let m = 0; m < 3; m++) {
      const c = log.consumer({ groupId: 'g', autoOffsetReset: 'earliest' })
      await c.subscribe({ topics: ['t'] })
      await c.run({ eachMessage: async ({ message }) => { seen.push(Number(message.offset)) } })
      members.push(c)
    }
    await until(() => members.every((c) => c.assignment().length > 0), 'every member has partitions')
    // Every client closes at once: each leave rebalances the group onto members that are closing.
    await bounded(log.close(), WAIT_MS, `close in round ${round}`)
  }
}))

test.run()
