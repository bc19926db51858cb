/**
 * The producer (lib/client/producer.ts) over real partitions: per-partition order and the
 * metadata each send gets back; batching by event-loop turn, lingerMs and batchSize; every
 * acks setting; every backpressure path (maxBlockMs 0, N, -1/Infinity, RECORD_TOO_LARGE,
 * FIFO admission); bad input, which must reject and write nothing; flush()/close(), which
 * deliver everything buffered and report what failed; retries of transient write faults;
 * and the producer's life with the log's.
 *
 * Timers are real. No assertion is about how long something took: waits are bounded (a
 * stuck promise fails the test instead of hanging it) and the assertions are about which
 * batches were written, in what order, holding what. Faults come from lib/io/files.ts's
 * injector and are always removed in a `finally`.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { fileURLToPath } from 'node:url'
import {
  Log, type Message, type Partition, type Producer, type ProducerOptions, type RecordMetadata, StrandError, type TopicConfigInput,
} from '../../lib/index.js'
import { setFaultInjector } from '../../lib/io/files.js'
import { bounded, killHard, rng, spawnChild, withTempDir } from '../helpers.js'

const OPEN = { retentionCheckIntervalMs: 0 } as const
/** Bound on any wait; far longer than anything takes, far shorter than the 60 s lingers below. */
const WAIT_MS = 20_000
/** A linger no test waits out: anything written under it was written for another reason. */
const FOREVER_MS = 60_000
const SEED = Number(process.env.STRAND_TEST_SEED ?? 0x9e0d)
const RETRY_FIXTURE = fileURLToPath(new URL('../fixtures/producer-retry.ts', import.meta.url))

// --- helpers --------------------------------------------------------------------------------

interface TopicSpec { name: string, partitions?: number, config?: TopicConfigInput }

async function openLog(dir: string, topics: TopicSpec[] = [{ name: 't' }]): Promise<Log> {
  const log = await Log.open(dir, OPEN)
  try {
    for (const t of topics) if (!log.hasTopic(t.name)) await log.createTopic(t.name, { partitions: t.partitions ?? 1, config: t.config })
    return log
  } catch (err) {
    await log.close()
    throw err
  }
}

/** Runs `fn` on a fresh log; closes it afterwards (a close failure the test expected is its own business). */
async function withLog(topics: TopicSpec[], fn: (log: Log, dir: string) => Promise<void>): Promise<void> {
  await withTempDir(async (dir) => {
    const log = await openLog(dir, topics)
    try {
      await fn(log, dir)
    } finally {
      setFaultInjector(null)
      await log.close().catch(() => {})
    }
  })
}

const yieldTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** Polls `cond` until it holds; fails the test after WAIT_MS. */
async function until(cond: () => boolean, what: string): Promise<void> {
  await bounded((async () => { while (!cond()) await sleep(2) })(), WAIT_MS, what)
}

/** A promise's state, observable synchronously. */
interface Tracked<T> { promise: Promise<T>, settled: boolean, value?: T, error?: unknown }

function track<T>(promise: Promise<T>): Tracked<T> {
  const t: Tracked<T> = { promise, settled: false }
  promise.then((v) => { t.settled = true; t.value = v }, (e) => { t.settled = true; t.error = e })
  return t
}

function assertCode(err: unknown, code: string, why: string): void {
  assert.instance(err, StrandError, `${why}: expected a StrandError ${code}, got ${(err as Error)?.stack ?? String(err)}`)
  assert.is((err as StrandError).code, code, `${why}: ${(err as Error).message}`)
}

async function expectReject(fn: () => Promise<unknown>, code: string, why: string): Promise<unknown> {
  let promise: Promise<unknown>
  try {
    promise = fn()
  } catch (err) {
    assert.unreachable(`${why}: threw synchronously (${(err as Error).message}) instead of rejecting`)
    throw err
  }
  try {
    await bounded(promise, WAIT_MS, why)
  } catch (err) {
    assertCode(err, code, why)
    return err
  }
  assert.unreachable(`${why}: expected a rejection with ${code}`)
}

function expectThrow(fn: () => unknown, code: string, why: string): void {
  try {
    fn()
  } catch (err) {
    assertCode(err, code, why)
    return
  }
  assert.unreachable(`${why}: expected ${code}, nothing was thrown`)
}

/** A batch as read back. */
interface ReadBatch { baseOffset: number, count: number, producerId: number, baseSequence: number, values: string[] }

function batchesOf(p: Partition): ReadBatch[] {
  const out: ReadBatch[] = []
  let o = p.logStartOffset
  while (o < p.logEndOffset) {
    const r = p.read(o)
    assert.ok(r.batches.length > 0, `read(${o}) below the log end`)
    for (const b of r.batches) {
      out.push({ baseOffset: b.baseOffset, count: b.count, producerId: b.producerId, baseSequence: b.baseSequence, values: b.records().map((x) => x.value?.toString() ?? '') })
    }
    o = r.nextOffset
  }
  return out
}

const valuesOf = (p: Partition): string[] => batchesOf(p).flatMap((b) => b.values)

/** Fails writes to segment files (`.log`): the next `times` of them, with `errno`. Returns how many it failed so far. */
function failLogWrites(times: number, errno = 'EIO'): { fired: () => number } {
  let fired = 0
  setFaultInjector((site, file) => {
    if (site === 'write' && file.endsWith('.log') && fired < times) {
      fired++
      throw Object.assign(new Error(`${errno}: injected fault`), { code: errno })
    }
  })
  return { fired: () => fired }
}

/** What `flush` (or `close`) reported: the errors inside its AggregateError, [] when it resolved. */
async function reported(p: Promise<void>, what: string): Promise<unknown[]> {
  const err = await bounded(p.then(() => null, (e: unknown) => e), WAIT_MS, what)
  if (err === null) return []
  assert.instance(err, AggregateError, `${what}: rejects with an AggregateError, got ${(err as Error)?.stack ?? String(err)}`)
  return (err as AggregateError).errors
}

const v = (n: number, fill = 0): Message => ({ value: `m${n}`.padEnd(fill, '.') })

// --- order and metadata ---------------------------------------------------------------------

test('per partition, records land in send order and each send\'s metadata points at its own records', async () => {
  await withLog([{ name: 't', partitions: 4 }, { name: 'u', partitions: 2 }], async (log) => {
    const random = rng(SEED)
    // Small batches, so a partition's records span many batches and event-loop turns.
    const producer = log.producer({ batchSize: 600 })
    const topics = { t: log.topic('t'), u: log.topic('u') }
    interface Sent { id: number, messages: Array<{ topic: 't' | 'u', m: Message }>, acks: 0 | 1 | -1 | 'all', result?: Promise<RecordMetadata[]> }
    const sends: Sent[] = []
    for (let id = 0; id < 1500; id++) {
      const acks = ([0, 1, -1, 'all'] as const)[Math.floor(random() * 4)]
      const n = 1 + Math.floor(random() * 3)
      const multiTopic = random() < 0.1
      const messages: Sent['messages'] = []
      for (let j = 0; j < n; j++) {
        const topic = multiTopic && j % 2 === 1 ? 'u' : 't'
        const m: Message = { value: `${id}.${j}` }
        const r = random()
        if (r < 0.4) m.key = `k${Math.floor(random() * 40)}`
        else if (r < 0.7) m.partition = Math.floor(random() * topics[topic].partitionCount)
        if (random() < 0.2) m.headers = { n: String(id) }
        messages.push({ topic, m })
      }
      const s: Sent = { id, messages, acks }
      if (multiTopic) {
        s.result = producer.sendBatch({ acks, topicMessages: (['t', 'u'] as const).map((topic) => ({ topic, messages: messages.filter((x) => x.topic === topic).map((x) => x.m) })).filter((tm) => tm.messages.length > 0) })
        // sendBatch lists results topic by topic: put the messages in that order too.
        s.messages = [...messages.filter((x) => x.topic === 't'), ...messages.filter((x) => x.topic === 'u')]
      } else {
        s.result = producer.send({ topic: 't', acks, messages: messages.map((x) => x.m) })
      }
      sends.push(s)
      const pause = random()
      if (pause < 0.05) await yieldTurn()
      else if (pause < 0.06) await sleep(1)
    }
    const results = await bounded(Promise.all(sends.map((s) => s.result!)), WAIT_MS, 'all sends')
    await bounded(producer.flush(), WAIT_MS, 'flush')

    // Each send's metadata: its own records, where the partitioner or the caller put them.
    let total = 0
    sends.forEach((s, i) => {
      const r = results[i]
      assert.is(r.length, s.messages.length, `send ${s.id}: one metadata entry per message`)
      s.messages.forEach(({ topic, m }, j) => {
        total++
        assert.is(r[j].topic, topic, `send ${s.id} message ${j}: topic`)
        if (m.partition !== undefined) assert.is(r[j].partition, m.partition, `send ${s.id} message ${j}: explicit partition`)
        else if (m.key !== undefined) assert.is(r[j].partition, topics[topic].partitionFor(m.key), `send ${s.id} message ${j}: partition of key ${m.key}`)
        if (s.acks === 0) {
          assert.is(r[j].offset, -1, `send ${s.id}: acks 0 has no offsets`)
          return
        }
        const got = topics[topic].partition(r[j].partition).read(r[j].offset).records()[0]
        assert.is(got.offset, r[j].offset)
        assert.is(got.value?.toString(), m.value, `send ${s.id} message ${j}: the record at ${topic}/${r[j].partition}@${r[j].offset}`)
      })
    })

    // Per partition: send order (then message order inside a send), every message exactly once;
    // batches carry this producer's id and gap-free sequences from 0.
    let read = 0
    for (const topic of Object.values(topics)) {
      for (const p of topic.partitions) {
        let prev = [-1, -1]
        let seq = 0
        for (const b of batchesOf(p)) {
          assert.is(b.producerId, producer.producerId, `${p.topic}/${p.id}@${b.baseOffset}: producer id`)
          assert.is(b.baseSequence, seq, `${p.topic}/${p.id}@${b.baseOffset}: sequence`)
          seq += b.count
          for (const value of b.values) {
            const cur = value.split('.').map(Number)
            assert.ok(cur[0] > prev[0] || (cur[0] === prev[0] && cur[1] > prev[1]), `${p.topic}/${p.id}: ${value} after ${prev.join('.')}`)
            prev = cur
            read++
          }
        }
      }
    }
    assert.is(read, total, 'every message was written once')
    assert.ok(producer.producerId >= 0, 'an idempotent producer has an id')
  })
})

test('a producer with idempotent: false writes batches without a producer id', async () => {
  await withLog([{ name: 't' }], async (log) => {
    const producer = log.producer({ idempotent: false })
    await bounded(producer.send({ topic: 't', messages: [v(0), v(1)] }), WAIT_MS, 'send')
    assert.is(producer.producerId, -1)
    const [b] = batchesOf(log.topic('t').partition(0))
    assert.equal([b.producerId, b.baseSequence, b.values], [-1, -1, ['m0', 'm1']])
  })
})

// --- batching -------------------------------------------------------------------------------

test('sends made in one event-loop turn share one batch', async () => {
  await withLog([{ name: 't', partitions: 2 }], async (log) => {
    const producer = log.producer()
    await producer.connect()
    const results = Array.from({ length: 200 }, (_, i) => producer.send({ topic: 't', messages: [{ ...v(i), partition: i % 2 }] }))
    await bounded(Promise.all(results), WAIT_MS, 'sends')
    for (const p of log.topic('t').partitions) {
      const batches = batchesOf(p)
      assert.is(batches.length, 1, `partition ${p.id}: one batch`)
      assert.equal(batches[0].values, Array.from({ length: 100 }, (_, i) => `m${2 * i + p.id}`))
    }
    // The next turn starts a new batch.
    await bounded(producer.send({ topic: 't', messages: [{ ...v(200), partition: 0 }] }), WAIT_MS, 'send')
    assert.is(batchesOf(log.topic('t').partition(0)).length, 2)
  })
})

test('a small batchSize splits one turn\'s sends into full batches of equal size', async () => {
  await withLog([{ name: 't' }], async (log) => {
    const producer = log.producer({ batchSize: 2000 })
    await producer.connect()
    const results = Array.from({ length: 100 }, (_, i) => producer.send({ topic: 't', messages: [v(i, 100)] }))
    await bounded(Promise.all(results), WAIT_MS, 'sends')
    const batches = batchesOf(log.topic('t').partition(0))
    const full = batches[0].count
    assert.ok(full > 1 && batches.length > 1, `several batches of several records (${batches.map((b) => b.count).join(', ')})`)
    for (const b of batches.slice(0, -1)) assert.is(b.count, full, 'every batch but the last is full')
    assert.ok(batches[batches.length - 1].count <= full)
    assert.equal(batches.flatMap((b) => b.values), Array.from({ length: 100 }, (_, i) => v(i, 100).value))
  })
})

test('a message of batchSize or more goes in a batch of its own, so one too large for the topic fails alone', async () => {
  await withLog([{ name: 't', config: { maxMessageBytes: 4096 } }], async (log) => {
    const producer = log.producer({ batchSize: 1024 })
    await producer.connect()
    const before = producer.send({ topic: 't', messages: [v(0)] })
    const huge = producer.send({ topic: 't', messages: [{ value: 'x'.repeat(8000) }] })
    const after = producer.send({ topic: 't', messages: [v(1)] })
    await expectReject(() => huge, 'RECORD_TOO_LARGE', 'the huge message')
    await bounded(Promise.all([before, after]), WAIT_MS, 'its neighbours')
    assert.equal(valuesOf(log.topic('t').partition(0)), ['m0', 'm1'])
    const errors = await reported(producer.flush(), 'flush')
    assert.is(errors.length, 1, 'flush reports the failed batch')
    assertCode(errors[0], 'RECORD_TOO_LARGE', 'flush')
  })
})

test('with batchSize as large as the topic\'s maxMessageBytes, no batch is built that the partition refuses', async () => {
  const limit = 64 * 1024
  await withLog([{ name: 't', config: { maxMessageBytes: limit } }], async (log) => {
    const producer = log.producer({ batchSize: limit })
    await producer.connect()
    // Each message is well under batchSize, so several share a batch; together they must stay under the limit.
    const results = Array.from({ length: 30 }, (_, i) => producer.send({ topic: 't', messages: [{ value: `${i}:`.padEnd(10_000, 'x') }] }))
    const settled = await bounded(Promise.allSettled(results), WAIT_MS, 'sends')
    const failed = settled.filter((r) => r.status === 'rejected') as PromiseRejectedResult[]
    assert.is(failed.length, 0, `sends failed: ${failed[0]?.reason?.message}`)
    const batches = batchesOf(log.topic('t').partition(0))
    assert.ok(batches.length > 1 && batches.some((b) => b.count > 1), `batched (${batches.map((b) => b.count).join(', ')})`)
    assert.is(batches.reduce((n, b) => n + b.count, 0), 30)
  })
})

test('lingerMs holds a batch open across event-loop turns until the linger expires', async () => {
  await withLog([{ name: 't' }], async (log) => {
    const p = log.topic('t').partition(0)
    // Long enough that five turns always fit inside it; the test never waits for it to pass.
    const producer = log.producer({ lingerMs: 2500 })
    await producer.connect()
    const results: Promise<RecordMetadata[]>[] = []
    for (let i = 0; i < 5; i++) {
      results.push(producer.send({ topic: 't', messages: [v(i)] }))
      await yieldTurn()
    }
    assert.is(p.logEndOffset, 0, 'nothing written inside the linger')
    const metas = await bounded(Promise.all(results), WAIT_MS, 'sends after the linger')
    assert.equal(metas.map((m) => m[0].offset), [0, 1, 2, 3, 4])
    const batches = batchesOf(p)
    assert.is(batches.length, 1, 'the five sends made one batch')
    assert.equal(batches[0].values, ['m0', 'm1', 'm2', 'm3', 'm4'])
  })
})

test('under a long linger, a batch that fills batchSize is written at once and the rest waits', async () => {
  await withLog([{ name: 't' }], async (log) => {
    const p = log.topic('t').partition(0)
    const producer = log.producer({ lingerMs: FOREVER_MS, batchSize: 5000 })
    await producer.connect()
    const results: Promise<RecordMetadata[]>[] = []
    for (let i = 0; i < 12; i++) {
      results.push(producer.send({ topic: 't', messages: [v(i, 1000)] }))
      await yieldTurn()
    }
    // Resolving at all proves the write did not wait for the 60 s linger.
    await bounded(results[0], WAIT_MS, 'first send')
    const batches = batchesOf(p)
    const full = batches[0].count
    assert.ok(full >= 2 && full < 12, `a full batch of several records (${full})`)
    for (const b of batches) assert.is(b.count, full, 'only full batches are written')
    // A batch closes when the next message does not fit, so the open one may be exactly full.
    assert.ok(12 - p.logEndOffset <= full, `what waits is at most one batch (${12 - p.logEndOffset} of ${full})`)
    assert.ok(p.logEndOffset < 12, 'the rest waits for the linger')
    await bounded(producer.close(), WAIT_MS, 'close')
    assert.is(p.logEndOffset, 12)
    assert.equal((await Promise.all(results)).map((m) => m[0].offset), Array.from({ length: 12 }, (_, i) => i))
  })
})

// --- acks -----------------------------------------------------------------------------------

test('acks 0 resolves with offset -1 before anything is written; the write follows', async () => {
  await withLog([{ name: 't', partitions: 2 }], async (log) => {
    const producer = log.producer({ acks: 0 })
    await producer.connect()
    const r = await bounded(producer.send({ topic: 't', messages: [{ ...v(0), partition: 0 }, { ...v(1), partition: 1 }] }), WAIT_MS, 'send')
    assert.equal(r, [{ topic: 't', partition: 0, offset: -1 }, { topic: 't', partition: 1, offset: -1 }])
    assert.equal(log.topic('t').partitions.map((p) => p.logEndOffset), [0, 0], 'resolved before the write')
    await bounded(producer.flush(), WAIT_MS, 'flush')
    assert.equal(log.topic('t').partitions.map((p) => p.logEndOffset), [1, 1])
    // A send can ask for more than the producer's default.
    const r1 = await bounded(producer.send({ topic: 't', acks: 1, messages: [{ ...v(2), partition: 0 }] }), WAIT_MS, 'send acks 1')
    assert.is(r1[0].offset, 1)
  })
})

for (const acks of [1, 'all', -1] as const) {
  test(`acks ${acks} resolves with the offsets the records were written at`, async () => {
    await withLog([{ name: 't' }], async (log) => {
      const p = log.topic('t').partition(0)
      const producer = log.producer({ acks: 0 })
      const a = await bounded(producer.send({ topic: 't', acks, messages: [v(0), v(1)] }), WAIT_MS, 'send')
      const b = await bounded(producer.sendBatch({ acks, topicMessages: [{ topic: 't', messages: [v(2)] }] }), WAIT_MS, 'sendBatch')
      assert.equal([...a, ...b].map((m) => m.offset), [0, 1, 2])
      assert.is(p.logEndOffset, 3)
      // And as the producer's default.
      const c = await bounded(log.producer({ acks }).send({ topic: 't', messages: [v(3)] }), WAIT_MS, 'default acks')
      assert.is(c[0].offset, 3)
      assert.equal(valuesOf(p), ['m0', 'm1', 'm2', 'm3'])
    })
  })
}

test('with flush always, acks 1 resolves only once its records are fdatasynced; acks 0 does not wait', async () => {
  await withLog([{ name: 't', partitions: 2, config: { flush: 'always' } }], async (log) => {
    const t = log.topic('t')
    const producer = log.producer({ batchSize: 300 })
    await producer.connect()
    const checks: Promise<void>[] = []
    for (let i = 0; i < 300; i++) {
      const acks = i % 5 === 0 ? 0 : 1
      checks.push(producer.send({ topic: 't', acks, messages: [{ ...v(i, 20), partition: i % 2 }] }).then((r) => {
        // Checked when the promise settles, not later: syncedOffset only grows.
        const p = t.partition(r[0].partition)
        if (acks === 1) assert.ok(p.syncedOffset > r[0].offset, `send ${i}: resolved at offset ${r[0].offset} with only ${p.syncedOffset} synced`)
        else assert.is(r[0].offset, -1)
      }))
      if (i % 37 === 0) await yieldTurn()
    }
    await bounded(Promise.all(checks), WAIT_MS, 'sends')
    await bounded(producer.flush(), WAIT_MS, 'flush')
    assert.equal(t.partitions.map((p) => p.logEndOffset), [150, 150])
  })
})

// --- backpressure ---------------------------------------------------------------------------

test('maxBlockMs 0: a send that does not fit fails at once with BUFFER_FULL and none of it is written', async () => {
  await withLog([{ name: 't' }], async (log) => {
    const p = log.topic('t').partition(0)
    const producer = log.producer({ bufferMemory: 3000, maxBlockMs: 0, lingerMs: FOREVER_MS, acks: 0 })
    await producer.connect()
    await bounded(producer.send({ topic: 't', messages: [v(0, 2000)] }), WAIT_MS, 'first send')
    const second = track(producer.send({ topic: 't', messages: [v(1, 500), v(2, 500)] }))
    await Promise.resolve()
    await Promise.resolve()
    assert.ok(second.settled, 'rejected without waiting for anything')
    assertCode(second.error, 'BUFFER_FULL', 'second send')
    // What fits still goes in; close writes it with the first.
    await bounded(producer.send({ topic: 't', messages: [v(3, 100)] }), WAIT_MS, 'small send')
    await bounded(producer.close(), WAIT_MS, 'close')
    assert.equal(valuesOf(p), [v(0, 2000).value, v(3, 100).value])
  })
})

test('maxBlockMs N: a send waits for space and fails with BUFFER_FULL when none frees in time', async () => {
  await withLog([{ name: 't' }], async (log) => {
    const p = log.topic('t').partition(0)
    // Writes keep failing (and being retried), so the first send's bytes stay in the buffer.
    const faults = failLogWrites(Infinity)
    const producer = log.producer({ bufferMemory: 3000, maxBlockMs: 2000, acks: 0, retries: 1_000_000, retryBackoffMs: 5 })
    await producer.connect()
    await bounded(producer.send({ topic: 't', messages: [v(0, 2000)] }), WAIT_MS, 'first send')
    const blocked = track(producer.send({ topic: 't', messages: [v(1, 2000)] }))
    await yieldTurn()
    assert.not.ok(blocked.settled, 'the second send waits')
    await bounded(blocked.promise.catch(() => {}), WAIT_MS, 'the blocked send')
    assertCode(blocked.error, 'BUFFER_FULL', 'after maxBlockMs')
    assert.ok(faults.fired() > 1, 'the first batch was being retried meanwhile')
    setFaultInjector(null)
    await bounded(producer.flush(), WAIT_MS, 'flush')
    assert.equal(valuesOf(p), [v(0, 2000).value], 'the timed-out send was never written')
  })
})

test('maxBlockMs N: a blocked send is admitted once a write frees space', async () => {
  await withLog([{ name: 't' }], async (log) => {
    const p = log.topic('t').partition(0)
    // The buffer is full only of unwritten batches: blocking makes them be written now,
    // however long their linger, as Kafka's accumulator does when the pool has waiters.
    const producer = log.producer({ bufferMemory: 3000, maxBlockMs: WAIT_MS, lingerMs: FOREVER_MS })
    await producer.connect()
    const first = track(producer.send({ topic: 't', messages: [v(0, 2000)] }))
    // acks 0 resolves on admission.
    const second = track(producer.send({ topic: 't', acks: 0, messages: [v(1, 2000)] }))
    await yieldTurn()
    assert.is(p.logEndOffset, 1, 'the first batch was written to make room')
    await bounded(second.promise, WAIT_MS, 'the blocked send is admitted')
    assert.equal((await bounded(first.promise, WAIT_MS, 'first send'))[0].offset, 0)
    // Once admitted, the second send waits for its linger like any other.
    assert.is(p.logEndOffset, 1)
    await bounded(producer.close(), WAIT_MS, 'close')
    assert.equal(valuesOf(p), [v(0, 2000).value, v(1, 2000).value])
  })
})

for (const maxBlockMs of [-1, Infinity]) {
  test(`maxBlockMs ${maxBlockMs}: a blocked send waits as long as it takes`, async () => {
    await withLog([{ name: 't' }], async (log) => {
      const p = log.topic('t').partition(0)
      const faults = failLogWrites(Infinity)
      const producer = log.producer({ bufferMemory: 3000, maxBlockMs, acks: 0, retries: 1_000_000, retryBackoffMs: 5 })
      await producer.connect()
      await bounded(producer.send({ topic: 't', messages: [v(0, 2000)] }), WAIT_MS, 'first send')
      const blocked = track(producer.send({ topic: 't', messages: [v(1, 2000)] }))
      // Many failed retries later the send still waits, neither admitted nor failed.
      await until(() => faults.fired() >= 40, 'forty failed writes')
      assert.not.ok(blocked.settled, 'still waiting')
      setFaultInjector(null)
      assert.equal(await bounded(blocked.promise, WAIT_MS, 'the blocked send'), [{ topic: 't', partition: 0, offset: -1 }])
      await bounded(producer.flush(), WAIT_MS, 'flush')
      assert.equal(valuesOf(p), [v(0, 2000).value, v(1, 2000).value])
    })
  })
}

test('blocked sends are admitted first in, first out; a send that would fit queues behind them', async () => {
  await withLog([{ name: 't' }], async (log) => {
    const p = log.topic('t').partition(0)
    failLogWrites(Infinity)
    const producer = log.producer({ bufferMemory: 1000, maxBlockMs: -1, acks: 0, retries: 1_000_000, retryBackoffMs: 5 })
    await producer.connect()
    await bounded(producer.send({ topic: 't', messages: [v(0, 600)] }), WAIT_MS, 'X')
    // acks 0 resolves on admission: a settled promise means "admitted".
    const a = track(producer.send({ topic: 't', messages: [v(1, 900)] }))
    const b = track(producer.send({ topic: 't', messages: [v(2, 100)] })) // would fit next to X
    const c = track(producer.send({ topic: 't', messages: [v(3, 100)] }))
    for (let i = 0; i < 20; i++) await yieldTurn()
    assert.equal([a.settled, b.settled, c.settled], [false, false, false], 'nobody overtakes the first blocked send')
    setFaultInjector(null)
    await bounded(Promise.all([a.promise, b.promise, c.promise]), WAIT_MS, 'blocked sends')
    await bounded(producer.flush(), WAIT_MS, 'flush')
    assert.equal(valuesOf(p).map((x) => x.slice(0, 2)), ['m0', 'm1', 'm2', 'm3'], 'written in send order')
  })
})

test('a blocked send admitted as space frees is never interleaved with the send admitted before it', async () => {
  await withLog([{ name: 't' }], async (log) => {
    const p = log.topic('t').partition(0)
    // X fills the buffer; A (ten messages, several batches' worth) and B wait behind it.
    // Admitting A writes its first batches, which frees room for B part-way through A.
    const producer = log.producer({ bufferMemory: 1500, batchSize: 300, maxBlockMs: -1, acks: 0 })
    await producer.connect()
    const x = producer.send({ topic: 't', messages: [{ value: 'x'.repeat(200) }] })
    const a = producer.send({ topic: 't', messages: Array.from({ length: 10 }, (_, i) => ({ value: `a${i}`.padEnd(100, '.') })) })
    const b = producer.send({ topic: 't', messages: [{ value: 'b0'.padEnd(100, '.') }] })
    await bounded(Promise.all([x, a, b]), WAIT_MS, 'sends')
    await bounded(producer.flush(), WAIT_MS, 'flush')
    assert.equal(valuesOf(p).map((s) => s.slice(0, 2)), ['xx', 'a0', 'a1', 'a2', 'a3', 'a4', 'a5', 'a6', 'a7', 'a8', 'a9', 'b0'], 'send order')
  })
})

test('a blocked send that times out lets the sends behind it in', async () => {
  await withLog([{ name: 't' }], async (log) => {
    const p = log.topic('t').partition(0)
    failLogWrites(Infinity)
    const producer = log.producer({ bufferMemory: 1000, maxBlockMs: 500, acks: 0, retries: 1_000_000, retryBackoffMs: 5 })
    await producer.connect()
    await bounded(producer.send({ topic: 't', messages: [v(0, 600)] }), WAIT_MS, 'X')
    const big = track(producer.send({ topic: 't', messages: [v(1, 900)] }))
    const small = track(producer.send({ topic: 't', messages: [v(2, 100)] }))
    await bounded(big.promise.catch(() => {}), WAIT_MS, 'the big send')
    assertCode(big.error, 'BUFFER_FULL', 'the big send')
    await bounded(small.promise, WAIT_MS, 'the small send is admitted')
    setFaultInjector(null)
    await bounded(producer.flush(), WAIT_MS, 'flush')
    assert.equal(valuesOf(p).map((x) => x.slice(0, 2)), ['m0', 'm2'])
  })
})

test('a send larger than bufferMemory fails at once with RECORD_TOO_LARGE and none of it is written', async () => {
  await withLog([{ name: 't' }], async (log) => {
    const p = log.topic('t').partition(0)
    const producer = log.producer({ bufferMemory: 1000, maxBlockMs: -1 })
    await expectReject(() => producer.send({ topic: 't', messages: [v(0, 1200)] }), 'RECORD_TOO_LARGE', 'one large message')
    await expectReject(() => producer.send({ topic: 't', messages: [v(1, 400), v(2, 400), v(3, 400)] }), 'RECORD_TOO_LARGE', 'three that add up')
    await bounded(producer.send({ topic: 't', messages: [v(4, 400)] }), WAIT_MS, 'one that fits')
    await bounded(producer.close(), WAIT_MS, 'close')
    assert.equal(valuesOf(p), [v(4, 400).value])
  })
})

// --- bad input ------------------------------------------------------------------------------

test('bad producer options throw INVALID_ARGUMENT', async () => {
  await withLog([{ name: 't' }], async (log) => {
    const bad: unknown[] = [
      null, 'fast', { lingerMs: -1 }, { lingerMs: 1.5 }, { lingerMs: '5' }, { batchSize: 0 }, { bufferMemory: 0 },
      { bufferMemory: -5 }, { maxBlockMs: -2 }, { maxBlockMs: 0.5 }, { maxBlockMs: NaN }, { maxBlockMs: -Infinity },
      { acks: 2 }, { acks: '1' }, { acks: 'none' }, { idempotent: 1 }, { retries: -1 }, { retryBackoffMs: NaN },
    ]
    for (const o of bad) expectThrow(() => log.producer(o as ProducerOptions), 'INVALID_ARGUMENT', `options ${JSON.stringify(o)}`)
    for (const o of [{}, undefined, { maxBlockMs: -1 }, { maxBlockMs: Infinity }, { acks: -1 }, { lingerMs: undefined }] as ProducerOptions[]) {
      await log.producer(o).close()
    }
  })
})

test('a bad send rejects with its code, writes nothing, and leaves the sends around it alone', async () => {
  await withLog([{ name: 't', partitions: 2 }], async (log) => {
    const t = log.topic('t')
    const producer = log.producer()
    await producer.connect()
    const bad: Array<[string, unknown, string]> = [
      ['unknown topic', { topic: 'nope', messages: [v(0)] }, 'UNKNOWN_TOPIC'],
      ['invalid topic name', { topic: 'no/such', messages: [v(0)] }, 'INVALID_TOPIC'],
      ['partition past the last', { topic: 't', messages: [{ ...v(0), partition: 2 }] }, 'UNKNOWN_PARTITION'],
      ['negative partition', { topic: 't', messages: [{ ...v(0), partition: -1 }] }, 'UNKNOWN_PARTITION'],
      ['fractional partition', { topic: 't', messages: [{ ...v(0), partition: 0.5 }] }, 'UNKNOWN_PARTITION'],
      ['string partition', { topic: 't', messages: [{ ...v(0), partition: '0' }] }, 'UNKNOWN_PARTITION'],
      ['number key', { topic: 't', messages: [{ key: 5, value: 'x' }] }, 'INVALID_ARGUMENT'],
      ['object key', { topic: 't', messages: [{ key: {}, value: 'x' }] }, 'INVALID_ARGUMENT'],
      ['number value', { topic: 't', messages: [{ value: 5 }] }, 'INVALID_ARGUMENT'],
      ['negative timestamp', { topic: 't', messages: [{ value: 'x', timestamp: -1 }] }, 'INVALID_ARGUMENT'],
      ['fractional timestamp', { topic: 't', messages: [{ value: 'x', timestamp: 1.5 }] }, 'INVALID_ARGUMENT'],
      ['string timestamp', { topic: 't', messages: [{ value: 'x', timestamp: '1' }] }, 'INVALID_ARGUMENT'],
      ['header value a number', { topic: 't', messages: [{ value: 'x', headers: { h: 5 } }] }, 'INVALID_ARGUMENT'],
      ['headers a string', { topic: 't', messages: [{ value: 'x', headers: 'h' }] }, 'INVALID_ARGUMENT'],
      ['header entry without a string key', { topic: 't', messages: [{ value: 'x', headers: [{ key: 1, value: 'y' }] }] }, 'INVALID_ARGUMENT'],
      ['no messages', { topic: 't', messages: [] }, 'INVALID_ARGUMENT'],
      ['messages not an array', { topic: 't', messages: 'x' }, 'INVALID_ARGUMENT'],
      ['a null message', { topic: 't', messages: [null] }, 'INVALID_ARGUMENT'],
      ['one bad message among good ones', { topic: 't', messages: [v(0), v(1), { key: 5, value: 'x' }] }, 'INVALID_ARGUMENT'],
      ['bad acks', { topic: 't', acks: 2, messages: [v(0)] }, 'INVALID_ARGUMENT'],
      ['record null', null, 'INVALID_ARGUMENT'],
    ]
    let good = 0
    const expected: string[][] = [[], []]
    const sendGood = (): Promise<RecordMetadata[]> => {
      const m = { value: `good${good}`, partition: good % 2 }
      expected[m.partition].push(m.value)
      good++
      return producer.send({ topic: 't', messages: [m] })
    }
    for (const [why, record, code] of bad) {
      // In one turn: a good send, the bad one, a good one. They would share a batch.
      const before = sendGood()
      const err = expectReject(() => producer.send(record as never), code, why)
      const after = sendGood()
      await err
      await bounded(Promise.all([before, after]), WAIT_MS, `${why}: the good sends around it`)
    }
    await bounded(producer.flush(), WAIT_MS, 'flush')
    assert.equal(t.partitions.map((p) => valuesOf(p)), expected, 'exactly the good sends were written')
    // sendBatch: one bad topic rejects the whole call.
    await expectReject(() => producer.sendBatch({ topicMessages: [{ topic: 't', messages: [v(9)] }, { topic: 'nope', messages: [v(9)] }] }), 'UNKNOWN_TOPIC', 'sendBatch with an unknown topic')
    await expectReject(() => producer.sendBatch({ topicMessages: 't' } as never), 'INVALID_ARGUMENT', 'sendBatch without an array')
    await expectReject(() => producer.sendBatch(null as never), 'INVALID_ARGUMENT', 'sendBatch(null)')
    await bounded(producer.flush(), WAIT_MS, 'flush')
    assert.equal(t.partitions.map((p) => valuesOf(p)), expected, 'the bad sendBatch calls wrote nothing')
  })
})

// --- flush, close and failures --------------------------------------------------------------

for (const connected of [false, true]) {
  test(`close delivers everything buffered under a long linger before it resolves (${connected ? 'after connect' : 'sends made before the producer id arrived'})`, async () => {
    await withLog([{ name: 't', partitions: 3 }], async (log) => {
      const t = log.topic('t')
      const producer = log.producer({ lingerMs: FOREVER_MS })
      if (connected) await producer.connect()
      const results = Array.from({ length: 30 }, (_, i) => track(producer.send({ topic: 't', acks: i % 3 === 0 ? 0 : 1, messages: [{ ...v(i), partition: i % 3 }] })))
      await bounded(producer.close(), WAIT_MS, 'close')
      assert.equal(t.partitions.map((p) => p.logEndOffset), [10, 10, 10], 'all written when close resolves')
      const metas = await bounded(Promise.all(results.map((r) => r.promise)), WAIT_MS, 'sends')
      metas.forEach((m, i) => assert.equal(m[0], { topic: 't', partition: i % 3, offset: i % 3 === 0 ? -1 : Math.floor(i / 3) }, `send ${i}`))
      await expectReject(() => producer.send({ topic: 't', messages: [v(99)] }), 'LOG_CLOSED', 'send after close')
    })
  })
}

test('flush writes everything buffered and waits for it; the producer then goes on batching', async () => {
  await withLog([{ name: 't' }], async (log) => {
    const p = log.topic('t').partition(0)
    const producer = log.producer({ lingerMs: FOREVER_MS })
    // Not connected: these wait for the producer id, and flush must wait for them.
    const first = Array.from({ length: 5 }, (_, i) => track(producer.send({ topic: 't', messages: [v(i)] })))
    await bounded(producer.flush(), WAIT_MS, 'flush')
    assert.is(p.logEndOffset, 5)
    assert.ok(first.every((s) => s.settled && s.error === undefined), 'every send resolved before flush did')
    const second = Array.from({ length: 5 }, (_, i) => producer.send({ topic: 't', messages: [v(5 + i)] }))
    await yieldTurn()
    assert.is(p.logEndOffset, 5, 'the linger applies again after a flush')
    await bounded(producer.flush(), WAIT_MS, 'second flush')
    await bounded(Promise.all(second), WAIT_MS, 'second sends')
    assert.equal(batchesOf(p).map((b) => b.count), [5, 5])
    await bounded(producer.flush(), WAIT_MS, 'a flush with nothing to do')
  })
})

test('an acks=0 send whose batch fails is reported by the next flush as an AggregateError, once; sequences skip nothing', async () => {
  await withLog([{ name: 't' }], async (log) => {
    const p = log.topic('t').partition(0)
    const producer = log.producer({ acks: 0, retries: 0 })
    await bounded(producer.send({ topic: 't', acks: 1, messages: [v(0), v(1)] }), WAIT_MS, 'a good send')
    failLogWrites(Infinity)
    assert.equal(await bounded(producer.send({ topic: 't', messages: [v(2)] }), WAIT_MS, 'acks 0 send'), [{ topic: 't', partition: 0, offset: -1 }])
    const errors = await reported(producer.flush(), 'flush')
    assert.is(errors.length, 1, 'flush reports the failed acks 0 batch')
    assertCode(errors[0], 'IO_ERROR', 'the failure inside')
    setFaultInjector(null)
    await bounded(producer.flush(), WAIT_MS, 'the next flush has nothing to report')
    // The failed batch took no sequence numbers: the partition takes the next batch in order.
    const r = await bounded(producer.send({ topic: 't', acks: 1, messages: [v(3)] }), WAIT_MS, 'after the fault')
    assert.is(r[0].offset, 2)
    assert.equal(batchesOf(p).map((b) => [b.baseSequence, b.values]), [[0, ['m0', 'm1']], [2, ['m3']]])
  })
})

test('a batch that fails after its write (fdatasync) rejects its sends, and close reports it', async () => {
  await withTempDir(async (dir) => {
    const log = await openLog(dir, [{ name: 't', config: { flush: 'always' } }])
    try {
      setFaultInjector((site, file) => {
        if (site === 'fsync' && file.endsWith('.log')) throw Object.assign(new Error('EIO: injected'), { code: 'EIO' })
      })
      const producer = log.producer()
      const acked = producer.send({ topic: 't', acks: 1, messages: [v(0)] })
      const fire = producer.send({ topic: 't', acks: 0, messages: [v(1)] })
      await expectReject(() => acked, 'IO_ERROR', 'the acks 1 send')
      assert.equal(await fire, [{ topic: 't', partition: 0, offset: -1 }])
      const errors = await reported(producer.close(), 'close')
      assert.ok(errors.length > 0, 'close reports the failed batch')
      for (const e of errors) assertCode(e, 'IO_ERROR', 'inside')
    } finally {
      setFaultInjector(null)
      // The partition refuses writes after a failed fdatasync, so the log cannot close cleanly.
      await log.close().catch(() => {})
    }
  })
})

// --- retries --------------------------------------------------------------------------------

test('a transient write fault is retried and the record is written exactly once', async () => {
  await withLog([{ name: 't' }], async (log) => {
    const p = log.topic('t').partition(0)
    const faults = failLogWrites(1)
    const producer = log.producer({ retryBackoffMs: 10 })
    const r = await bounded(producer.send({ topic: 't', messages: [v(0), v(1)] }), WAIT_MS, 'send')
    assert.is(faults.fired(), 1, 'the first write failed')
    assert.equal(r.map((m) => m.offset), [0, 1])
    assert.equal(batchesOf(p).map((b) => [b.baseSequence, b.values]), [[0, ['m0', 'm1']]], 'one batch, once')
    await bounded(producer.send({ topic: 't', messages: [v(2)] }), WAIT_MS, 'next send')
    assert.equal(batchesOf(p).map((b) => b.baseSequence), [0, 2])
  })
})

test('a batch waiting for its retry holds back the batches behind it', async () => {
  await withLog([{ name: 't' }], async (log) => {
    const p = log.topic('t').partition(0)
    const faults = failLogWrites(3)
    const producer = log.producer({ retryBackoffMs: 20 })
    await producer.connect()
    const sends: Promise<RecordMetadata[]>[] = []
    for (let i = 0; i < 6; i++) {
      sends.push(producer.send({ topic: 't', messages: [v(i)] }))
      await yieldTurn() // each in its own batch
    }
    const r = await bounded(Promise.all(sends), WAIT_MS, 'sends')
    assert.is(faults.fired(), 3)
    assert.equal(r.map((m) => m[0].offset), [0, 1, 2, 3, 4, 5])
    assert.equal(valuesOf(p), ['m0', 'm1', 'm2', 'm3', 'm4', 'm5'])
  })
})

test('when retries run out the send fails with IO_ERROR, nothing is written, and the next batch takes its sequence', async () => {
  await withLog([{ name: 't' }], async (log) => {
    const p = log.topic('t').partition(0)
    const producer = log.producer({ retries: 2, retryBackoffMs: 5 })
    await bounded(producer.send({ topic: 't', messages: [v(0)] }), WAIT_MS, 'first')
    const faults = failLogWrites(3)
    await expectReject(() => producer.send({ topic: 't', messages: [v(1), v(2)] }), 'IO_ERROR', 'after three failed attempts')
    assert.is(faults.fired(), 3, 'one attempt and two retries')
    const errors = await reported(producer.flush(), 'flush')
    assert.is(errors.length, 1, 'flush reports the failed batch')
    assertCode(errors[0], 'IO_ERROR', 'flush')
    const r = await bounded(producer.send({ topic: 't', messages: [v(3)] }), WAIT_MS, 'after')
    assert.is(r[0].offset, 1)
    assert.equal(batchesOf(p).map((b) => [b.baseSequence, b.values]), [[0, ['m0']], [1, ['m3']]])
  })
})

test('a process whose only pending work is a send waiting for its retry stays alive until it is written', async () => {
  await withTempDir(async (dir) => {
    const child = spawnChild(RETRY_FIXTURE, [dir])
    try {
      await bounded(child.closed, WAIT_MS, 'the child')
    } finally {
      await killHard(child, WAIT_MS)
    }
    assert.is(child.proc.exitCode, 0, child.output())
    assert.equal(child.lines, ['sent 0', 'closed'], `the send resolved and the log closed: ${child.output()}`)
    const log = await Log.open(dir, OPEN)
    try {
      assert.equal(valuesOf(log.topic('t').partition(0)), ['once'])
    } finally {
      await log.close()
    }
  })
})

// --- life with the log ----------------------------------------------------------------------

test('send, sendBatch, connect after close reject with LOG_CLOSED; close is idempotent', async () => {
  await withLog([{ name: 't' }], async (log) => {
    const producer: Producer = log.producer()
    await bounded(producer.send({ topic: 't', messages: [v(0)] }), WAIT_MS, 'send')
    const closing = producer.close()
    await expectReject(() => producer.send({ topic: 't', messages: [v(1)] }), 'LOG_CLOSED', 'send while closing')
    await bounded(closing, WAIT_MS, 'close')
    await bounded(producer.close(), WAIT_MS, 'close again')
    await bounded(producer.disconnect(), WAIT_MS, 'disconnect')
    await expectReject(() => producer.send({ topic: 't', messages: [v(1)] }), 'LOG_CLOSED', 'send')
    await expectReject(() => producer.sendBatch({ topicMessages: [{ topic: 't', messages: [v(1)] }] }), 'LOG_CLOSED', 'sendBatch')
    await expectReject(() => producer.connect(), 'LOG_CLOSED', 'connect')
    assert.equal(valuesOf(log.topic('t').partition(0)), ['m0'])
  })
})

test('log.close() closes open producers, delivering what they buffered, and then refuses new ones', async () => {
  await withTempDir(async (dir) => {
    const log = await openLog(dir, [{ name: 't', partitions: 2 }])
    const a = log.producer({ lingerMs: FOREVER_MS })
    await a.connect()
    const b = log.producer({ lingerMs: FOREVER_MS }) // not connected yet
    const sent = [
      a.send({ topic: 't', messages: [{ ...v(0), partition: 0 }, { ...v(1), partition: 1 }] }),
      b.send({ topic: 't', messages: [{ ...v(2), partition: 0 }] }),
      a.send({ topic: 't', messages: [{ ...v(3), partition: 1 }] }),
    ].map(track)
    await bounded(log.close(), WAIT_MS, 'log close')
    assert.ok(sent.every((s) => s.settled), 'every send settled before log.close() resolved')
    const metas = await bounded(Promise.all(sent.map((s) => s.promise)), WAIT_MS, 'sends')
    await expectReject(() => a.send({ topic: 't', messages: [v(9)] }), 'LOG_CLOSED', 'send on a closed log')
    expectThrow(() => log.producer(), 'LOG_CLOSED', 'log.producer() on a closed log')

    const again = await Log.open(dir, OPEN)
    try {
      assert.ok(again.openedCleanly)
      const t = again.topic('t')
      for (const m of metas.flat()) {
        const r = t.partition(m.partition).read(m.offset).records()[0]
        assert.is(r.offset, m.offset)
      }
      assert.equal(t.partitions.map((p) => valuesOf(p).sort()), [['m0', 'm2'], ['m1', 'm3']])
    } finally {
      await again.close()
    }
  })
})

test('log.close() reports a producer\'s failed batch after closing the log cleanly', async () => {
  await withTempDir(async (dir) => {
    const log = await openLog(dir, [{ name: 't' }])
    const producer = log.producer({ acks: 0, retries: 0, lingerMs: FOREVER_MS })
    await producer.connect()
    await bounded(producer.send({ topic: 't', messages: [v(0)] }), WAIT_MS, 'send')
    failLogWrites(1)
    let err: unknown = null
    try {
      await bounded(log.close(), WAIT_MS, 'log close')
    } catch (e) {
      err = e
    } finally {
      setFaultInjector(null)
    }
    assert.instance(err, AggregateError, `log.close() rejects with the producer's failure: ${String(err)}`)
    const again = await Log.open(dir, OPEN)
    try {
      assert.ok(again.openedCleanly, 'the log itself closed cleanly')
      assert.is(again.topic('t').partition(0).logEndOffset, 0)
    } finally {
      await again.close()
    }
  })
})

test.run()
