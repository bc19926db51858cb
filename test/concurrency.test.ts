/**
 * Many async callers on one log: thousands of concurrent appends keep per-partition call
 * order and all settle; close() in the middle of them settles every promise (those issued
 * before it resolve, those after reject LOG_CLOSED); readers running between the appends
 * never see part of a batch.
 *
 * Offsets are assigned when `append` is called, not when its promise resolves, so the order
 * to check is the order of the calls: each call records, before returning, which partition
 * each of its records is bound for.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Log, type FlushPolicy, type Partition, type RecordPosition, StrandError, type Topic, type TopicRecordInput } from '../lib/index.js'
import { rng, withTempDir } from './helpers.js'

const OPEN = { retentionCheckIntervalMs: 0 } as const
const PARTITIONS = 4
const CALLERS = 50
const CALLS_PER_CALLER = 100
/** Upper bound on any wait, so a promise that never settles fails the test instead of hanging it. */
const WAIT_MS = 60_000
const SEED = Number(process.env.STRAND_TEST_SEED ?? 0x5eed)
/** Small segments, so the appends also cross rolls (and their background flushes). */
const CONFIG = { segmentBytes: 64 * 1024, segmentIndexBytes: 4096, indexIntervalBytes: 1024 }

function bounded<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: not settled within ${WAIT_MS} ms`)), WAIT_MS) }),
  ])
}

const yieldNow = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

/** One append call: its records, and for each partition the values it sent there, in order. */
interface Call {
  id: number
  records: TopicRecordInput[]
  /** Values per partition in input order: what the batch for that partition must hold. */
  perPartition: Map<number, string[]>
  issuedBeforeClose: boolean
  outcome?: { ok: true, positions: RecordPosition[] } | { ok: false, error: unknown }
}

/** Value of record `idx` of `total` that call `id` sends to `partition`; readers parse it back. */
const valueOf = (id: number, partition: number, idx: number, total: number): string => `${id}/${partition}/${idx}/${total}`

/**
 * Builds a call of 1–4 records: an explicit partition or a key (placed by the partitioner),
 * sometimes several records for the same partition so batches hold more than one record.
 */
function makeCall(id: number, topic: Topic, random: () => number): Call {
  const n = 1 + Math.floor(random() * 4)
  const targets: Array<{ partition: number, key?: string }> = []
  for (let i = 0; i < n; i++) {
    if (i > 0 && random() < 0.5) { targets.push(targets[i - 1]); continue }
    if (random() < 0.5) targets.push({ partition: Math.floor(random() * PARTITIONS) })
    else {
      const key = `k${Math.floor(random() * 1000)}`
      targets.push({ partition: topic.partitionFor(key), key })
    }
  }
  const totals = new Map<number, number>()
  for (const t of targets) totals.set(t.partition, (totals.get(t.partition) ?? 0) + 1)
  const seen = new Map<number, number>()
  const perPartition = new Map<number, string[]>()
  const records = targets.map((t) => {
    const idx = seen.get(t.partition) ?? 0
    seen.set(t.partition, idx + 1)
    const value = valueOf(id, t.partition, idx, totals.get(t.partition)!)
    let list = perPartition.get(t.partition)
    if (list === undefined) perPartition.set(t.partition, list = [])
    list.push(value)
    return t.key === undefined ? { partition: t.partition, value } : { key: t.key, value }
  })
  return { id, records, perPartition, issuedBeforeClose: true }
}

/**
 * Every batch a reader gets must be one whole call's batch for that partition: record idx
 * 0..total−1 of one call, in order, and nothing else.
 */
function checkWholeBatches(p: Partition, from: number, what: string): number {
  let offset = from
  while (offset < p.logEndOffset) {
    const r = p.read(offset)
    assert.ok(r.batches.length > 0, `${what}: nothing read at ${offset} < LEO ${p.logEndOffset}`)
    for (const b of r.batches) {
      const records = b.records(offset)
      assert.is(records.length, b.count, `${what}: batch at ${b.baseOffset} read whole`)
      const parts = records.map((rec) => rec.value!.toString().split('/').map(Number))
      const [id, partition, , total] = parts[0]
      assert.is(partition, p.id, `${what}: a record of partition ${partition} in partition ${p.id}`)
      assert.is(records.length, total, `${what}: batch at ${b.baseOffset} holds all ${total} records of call ${id} (got ${records.length})`)
      parts.forEach((x, i) => {
        assert.equal(x, [id, partition, i, total], `${what}: record ${i} of the batch at ${b.baseOffset}`)
        assert.is(records[i].offset, b.baseOffset + i, `${what}: offsets inside the batch`)
      })
      offset = b.nextOffset
    }
  }
  return offset
}

/**
 * Runs CALLERS async callers, each issuing CALLS_PER_CALLER appends without awaiting them,
 * sometimes yielding to the event loop between calls. `onIssued` runs after each call is
 * made (synchronously), `reader` between yields. Returns every call, in issue order.
 */
async function runCallers(topic: Topic, random: () => number, onIssued?: (count: number) => void, closing?: () => boolean): Promise<{ calls: Call[], order: Call[][] }> {
  const calls: Call[] = []
  /** Per partition, the calls that sent it records, in the order they were made. */
  const order: Call[][] = Array.from({ length: PARTITIONS }, () => [])
  const pending: Promise<void>[] = []
  let nextId = 0
  const caller = async (straight: boolean): Promise<void> => {
    for (let i = 0; i < CALLS_PER_CALLER; i++) {
      const call = makeCall(nextId++, topic, random)
      call.issuedBeforeClose = !(closing?.() ?? false)
      calls.push(call)
      const promise = topic.append(call.records)
      if (call.issuedBeforeClose) for (const pid of call.perPartition.keys()) order[pid].push(call)
      pending.push(promise.then(
        (positions) => { call.outcome = { ok: true, positions } },
        (error) => { call.outcome = { ok: false, error } },
      ))
      onIssued?.(calls.length)
      // Half the callers run straight through; the others yield now and then.
      if (!straight && random() < 0.3) await (random() < 0.5 ? Promise.resolve() : yieldNow())
    }
  }
  const callers = Array.from({ length: CALLERS }, (_, i) => caller(i % 2 === 0))
  await bounded(Promise.all(callers), 'callers issuing')
  await bounded(Promise.all(pending), 'every append settling')
  for (const c of calls) assert.ok(c.outcome !== undefined, `call ${c.id} settled`)
  return { calls, order }
}

/**
 * For each partition, the calls that reached it (in call order) hold consecutive offsets
 * from `start`, each call's records in input order: order kept, no duplicates, no gaps.
 */
function checkOrder(order: Call[][], what: string, start = 0): void {
  for (let pid = 0; pid < PARTITIONS; pid++) {
    let expected = start
    for (const call of order[pid]) {
      assert.ok(call.outcome?.ok, `${what}: call ${call.id} resolved`)
      if (!call.outcome?.ok) continue
      const mine = call.outcome.positions.filter((x) => x.partition === pid).map((x) => x.offset)
      assert.equal(mine, mine.map((_, i) => expected + i), `${what}: partition ${pid}, call ${call.id} got offsets ${mine.join(',')}, expected from ${expected}`)
      expected += mine.length
    }
  }
}

/** Every resolved call's records are at their offsets with their values; partitions hold exactly those. */
function checkContents(topic: Topic, calls: Call[], what: string): void {
  const expected: Array<Map<number, string>> = Array.from({ length: PARTITIONS }, () => new Map())
  for (const c of calls) {
    if (!c.outcome?.ok) continue
    c.outcome.positions.forEach((pos, i) => {
      assert.not.ok(expected[pos.partition].has(pos.offset), `${what}: offset ${pos.partition}/${pos.offset} handed out twice`)
      expected[pos.partition].set(pos.offset, c.records[i].value as string)
    })
  }
  for (let pid = 0; pid < PARTITIONS; pid++) {
    const p = topic.partition(pid)
    assert.is(p.logEndOffset, expected[pid].size, `${what}: partition ${pid} holds exactly the resolved records`)
    let offset = 0
    while (offset < p.logEndOffset) {
      const r = p.read(offset)
      for (const rec of r.records()) {
        assert.is(rec.value?.toString(), expected[pid].get(rec.offset), `${what}: ${pid}/${rec.offset}`)
      }
      offset = r.nextOffset
    }
    checkWholeBatches(p, 0, what)
  }
}

for (const flush of ['always', 'os'] as FlushPolicy[]) {
  test(`flush ${JSON.stringify(flush)}: ${CALLERS * CALLS_PER_CALLER} concurrent appends from ${CALLERS} callers keep per-partition call order, settle, and read back whole`, () =>
    withTempDir(async (dir) => {
      const random = rng(SEED)
      const log = await Log.open(dir, OPEN)
      try {
        const topic = await log.createTopic('t', { partitions: PARTITIONS, config: { ...CONFIG, flush } })
        // A reader that runs between the callers' yields and checks every batch it sees is whole.
        const readFrom = new Array<number>(PARTITIONS).fill(0)
        let reads = 0
        let done = false
        const reader = (async () => {
          for (let i = 0; i < 1_000_000 && !done; i++) {
            for (let pid = 0; pid < PARTITIONS; pid++) readFrom[pid] = checkWholeBatches(topic.partition(pid), readFrom[pid], 'concurrent reader')
            reads++
            await yieldNow()
          }
        })()
        let result: Awaited<ReturnType<typeof runCallers>>
        try {
          result = await runCallers(topic, random)
        } finally {
          done = true
          await bounded(reader, 'reader')
        }
        assert.ok(reads > 1, 'the reader ran between the appends')
        const { calls, order } = result
        const failed = calls.filter((c) => !c.outcome?.ok)
        assert.is(failed.length, 0, `every append resolves: ${failed.slice(0, 3).map((c) => String((c.outcome as { error: unknown }).error)).join('; ')}`)
        checkOrder(order, 'in order')
        checkContents(topic, calls, 'after the appends')
        if (flush === 'always') for (const p of topic.partitions) assert.is(p.syncedOffset, p.logEndOffset, `every acknowledged append on ${p.id} is synced`)
        await log.close()
        const again = await Log.open(dir, OPEN)
        try {
          assert.ok(again.openedCleanly)
          checkContents(again.topic('t'), calls, 'after reopen')
        } finally {
          await again.close()
        }
      } finally {
        await log.close()
      }
    }))
}

for (const flush of ['always', 'os'] as FlushPolicy[]) {
  test(`flush ${JSON.stringify(flush)}: close() while thousands of appends are in flight settles every promise: earlier calls resolve and are there after reopen, later ones reject LOG_CLOSED`, () =>
    withTempDir(async (dir) => {
      const random = rng(SEED + 1)
      const log = await Log.open(dir, OPEN)
      let closed: Promise<void> | null = null
      let closeError: unknown = null
      const total = CALLERS * CALLS_PER_CALLER
      let calls: Call[] = []
      try {
        const topic = await log.createTopic('t', { partitions: PARTITIONS, config: { ...CONFIG, flush } })
        const result = await runCallers(topic, random, (count) => {
          // Close once about 60% of the calls are out, while many still wait for a sync.
          if (closed === null && count >= total * 0.6) closed = log.close().catch((err) => { closeError = err })
        }, () => closed !== null)
        calls = result.calls
        assert.ok(closed !== null, 'close was called mid-way')
        await bounded(closed!, 'close')
        assert.is(closeError, null, `close succeeds: ${(closeError as Error)?.stack}`)
        const before = calls.filter((c) => c.issuedBeforeClose)
        const after = calls.filter((c) => !c.issuedBeforeClose)
        assert.ok(before.length > 0 && after.length > 0, `calls on both sides of close (${before.length} before, ${after.length} after)`)
        for (const c of before) assert.ok(c.outcome?.ok, `call ${c.id}, made before close, resolves: ${String((c.outcome as { error?: unknown })?.error)}`)
        for (const c of after) {
          assert.not.ok(c.outcome?.ok, `call ${c.id}, made after close, rejects`)
          const err = (c.outcome as { error: unknown }).error
          assert.instance(err, StrandError, `call ${c.id}: ${String(err)}`)
          assert.is((err as StrandError).code, 'LOG_CLOSED', `call ${c.id}: ${(err as Error).message}`)
        }
        checkOrder(result.order, 'calls before close')
      } finally {
        if (closed === null) await log.close()
      }
      const again = await Log.open(dir, OPEN)
      try {
        assert.ok(again.openedCleanly, 'the close in the middle of the appends was clean')
        // Exactly the resolved calls' records, at their offsets: nothing from the rejected ones.
        checkContents(again.topic('t'), calls, 'after reopen')
      } finally {
        await again.close()
      }
    }))
}

test('close() while group-commit appends wait: none is left pending, and the log reopens cleanly with all of them', () =>
  withTempDir(async (dir) => {
    const log = await Log.open(dir, OPEN)
    const topic = await log.createTopic('t', { partitions: PARTITIONS, config: { ...CONFIG, flush: 'always' } })
    const promises: Array<Promise<RecordPosition[]>> = []
    for (let i = 0; i < 2000; i++) promises.push(topic.append([{ partition: i % PARTITIONS, value: valueOf(i, i % PARTITIONS, 0, 1) }]))
    const closing = log.close()
    const late = Promise.allSettled([topic.append([{ partition: 0, value: 'late' }])])
    const results = await bounded(Promise.allSettled(promises), 'appends waiting when close began')
    await bounded(closing, 'close')
    const lateResult = await bounded(late, 'append after close')
    assert.ok(results.every((r) => r.status === 'fulfilled'), 'every append made before close resolves once the final sync completes')
    assert.is(lateResult[0].status, 'rejected')
    assert.is(((lateResult[0] as PromiseRejectedResult).reason as StrandError).code, 'LOG_CLOSED')
    const again = await Log.open(dir, OPEN)
    try {
      assert.ok(again.openedCleanly)
      for (let pid = 0; pid < PARTITIONS; pid++) {
        const p = again.topic('t').partition(pid)
        assert.is(p.logEndOffset, 500)
        checkWholeBatches(p, 0, 'after reopen')
      }
    } finally {
      await again.close()
    }
  }))

test.run()
