/**
 * End-to-end benchmark through the client API, beside the raw engine in the same run:
 *
 * - produce: `producer.send` in sends of 1000 × 100 B / 200 × 1 KiB, 16 sends in flight, with
 *   the default batchSize and with batches of one send (as the raw loop appends them), and
 *   one-message sends (1000 outstanding) to show the producer's batching;
 * - consume: a group consumer reading everything from the beginning, with eachBatch and with
 *   eachMessage, and with eachBatch at maxPollRecords 10k (a poll as large as a raw read);
 * - end to end: a tailing consumer delivering while a producer sends;
 * - latency: one record at a time, paced, from `send` to the tailing consumer's eachMessage,
 *   beside the engine's floor (append → append listener → read).
 *
 * The raw rows are the storage benchmark's loops (bench/engine.ts): `Partition.append` of the
 * same batches with 16 in flight, `Partition.read` of 1 MiB at a time. "API/raw" divides an
 * API row by its raw reference; the issue's target is ≥ 0.70 (the API layer costs at most
 * 30%), and p99 < 100 µs for the tail latency. Every topic uses flush 'os'.
 *
 *   npm run bench:e2e                         # full run, median of 3 runs per row
 *   npm run bench:e2e -- --quick              # a smoke run, a few seconds
 *   npm run bench:e2e -- --runs 5 --interval-us 500 --samples 50000
 *   npm run bench:e2e -- --only produce --only raw --size 100    # a part, e.g. under --cpu-prof
 *
 * Prints numbers; never asserts on them. Every workload verifies what it produced or read:
 * the count, the order (each value carries its record's index, which must equal its offset)
 * and a sum over both ends of every value. Any mismatch fails the run; the last line says
 * whether every check passed. The machine's load average is printed before and after: on a
 * shared machine, rows with a large spread are noise.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { Log, type ConsumerOptions, type Message, type Partition, type ProducerOptions, type RecordMetadata } from '../lib/index.js'
import { percentile } from './latency.js'
import { unlessStalled } from './stall.js'

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    runs: { type: 'string' },
    dir: { type: 'string' },
    samples: { type: 'string' },
    'interval-us': { type: 'string' },
    size: { type: 'string', multiple: true },
    only: { type: 'string', multiple: true },
  },
})

const quick = args.quick === true
const scale = quick ? 0.02 : 1
const RUNS = Number(args.runs ?? (quick ? 1 : 3))
/** Sends (or raw appends) in flight at once, as in bench/engine.ts. */
const IN_FLIGHT = 16
/** Outstanding one-message sends: what the producer can gather into one batch per event-loop turn. */
const SINGLE_WINDOW = 1000
const ALL_SIZES = [
  { name: '100 B', valueBytes: 100, records: Math.round(1_000_000 * scale), perSend: 1000 },
  { name: '1 KiB', valueBytes: 1024, records: Math.round(200_000 * scale), perSend: 200 },
]
/** `--size 100` or `--size 1024` (repeatable) runs only those value sizes. */
const SIZES = args.size === undefined ? ALL_SIZES : ALL_SIZES.filter((s) => args.size!.includes(String(s.valueBytes)))
if (SIZES.length === 0) throw new Error(`Expected --size to be one of ${ALL_SIZES.map((s) => s.valueBytes).join(', ')}, got ${args.size!.join(', ')}`)
const GROUPS = ['raw', 'produce', 'consume', 'e2e', 'latency']
/** `--only produce` (repeatable; one of GROUPS) runs only those workloads, e.g. under a profiler. */
const only = args.only ?? GROUPS
if (only.some((g) => !GROUPS.includes(g))) throw new Error(`Expected --only to be one of ${GROUPS.join(', ')}, got ${only.join(', ')}`)
const LATENCY_SAMPLES = Number(args.samples ?? (quick ? 500 : 20_000))
const LATENCY_WARMUP = quick ? 100 : 2000
const INTERVAL_US = Number(args['interval-us'] ?? 250)
const TARGET_RATIO = 0.7
const TARGET_P99_US = 100
const TOPIC_CONFIG = { flush: 'os' as const, retentionMs: -1 }

for (const [name, v] of [['runs', RUNS], ['samples', LATENCY_SAMPLES], ['interval-us', INTERVAL_US]] as const) {
  if (!Number.isInteger(v) || v < 1) throw new Error(`Expected --${name} to be an integer >= 1, got ${v}`)
}

// --- payloads and verification -------------------------------------------------------------

/**
 * Value i carries i (uint32 LE) in its first 4 bytes and (7i + 3) & 0xff in its last, so a
 * reader can check order, loss, duplication and truncation from two places per value.
 */
function stamp(v: Buffer, i: number): void {
  v.writeUInt32LE(i, 0)
  v[v.length - 1] = (i * 7 + 3) & 0xff
}

/**
 * `slots` reusable sets of `perSend` messages, each value its own slice of one buffer. A slot
 * is restamped only after the send that used it resolved (the encoder has copied it by then),
 * so the benchmark measures strand, not a payload generator.
 */
class Payloads {
  readonly #slots: Message[][] = []

  constructor(readonly valueBytes: number, readonly perSend: number, slots: number) {
    for (let s = 0; s < slots; s++) {
      const pool = Buffer.alloc(valueBytes * perSend)
      for (let i = 0; i < pool.length; i++) pool[i] = (i * 31 + 7) & 0xff
      const messages: Message[] = []
      for (let i = 0; i < perSend; i++) messages.push({ value: pool.subarray(i * valueBytes, (i + 1) * valueBytes) })
      this.#slots.push(messages)
    }
  }

  /** Slot `slot`, stamped with record indexes `first`, `first + 1`, … */
  take(slot: number, first: number): Message[] {
    const messages = this.#slots[slot]
    for (let i = 0; i < messages.length; i++) stamp(messages[i].value as Buffer, first + i)
    return messages
  }
}

/** Reads that passed `Verifier.finish`: the smoke test checks the summary line, not just the exit code. */
let verifiedReads = 0

const expectedSums = new Map<number, number>()
function expectedSum(total: number): number {
  let s = expectedSums.get(total)
  if (s === undefined) {
    s = 0
    for (let i = 0; i < total; i++) s += i + ((i * 7 + 3) & 0xff)
    expectedSums.set(total, s)
  }
  return s
}

/** Checks records as they arrive (offset i must hold value i) and their count and sum at the end. */
class Verifier {
  next = 0
  sum = 0
  error: Error | null = null

  constructor(readonly what: string, readonly total: number, readonly valueBytes: number) {}

  see(offset: number, v: Buffer | null): void {
    if (v === null || v.length !== this.valueBytes) {
      this.#fail(`offset ${offset}: value of ${v?.length ?? 'null'} bytes, expected ${this.valueBytes}`)
    } else {
      const i = v.readUInt32LE(0)
      if (i !== this.next || offset !== this.next) this.#fail(`expected record ${this.next} at offset ${this.next}, got record ${i} at offset ${offset}`)
      this.sum += i + v[v.length - 1]
    }
    this.next++
  }

  /** Throws unless exactly `total` records arrived, in order, with the right bytes. */
  finish(): void {
    if (this.error !== null) throw this.error
    const want = expectedSum(this.total)
    if (this.next !== this.total || this.sum !== want) throw new Error(`${this.what}: read ${this.next}/${this.total} records, payload sum ${this.sum} != ${want}`)
    verifiedReads++
  }

  #fail(why: string): void {
    this.error ??= new Error(`${this.what}: ${why}`)
  }
}

/** Checks a send's metadata: one entry per message, at offsets first, first + 1, … */
function checkAcks(what: string, results: RecordMetadata[], first: number, count: number): void {
  if (results.length !== count) throw new Error(`${what}: send of ${count} messages answered ${results.length}`)
  for (let i = 0; i < count; i++) {
    if (results[i].offset !== first + i) throw new Error(`${what}: message ${first + i} acknowledged at offset ${results[i].offset}`)
  }
}

// --- timing helpers ------------------------------------------------------------------------

const T0 = process.hrtime.bigint()
/** µs since the benchmark started, as a double (exact to the ns for ~100 days). */
function nowUs(): number {
  return Number(process.hrtime.bigint() - T0) / 1000
}

/** What a timed section cost: wall-clock seconds and the process's CPU time (user + system). */
interface Cost { seconds: number, cpuSeconds: number }

/**
 * Starts timing; the returned function stops it. CPU time is the whole process (the libuv
 * pool's fsyncs included): beside the wall clock, it shows how much of a row's time was
 * waiting, and it moves less than wall time when the machine is shared.
 */
function startTimer(): () => Cost {
  const t0 = nowUs()
  const c0 = process.cpuUsage()
  return () => {
    const c = process.cpuUsage(c0)
    return { seconds: (nowUs() - t0) / 1e6, cpuSeconds: (c.user + c.system) / 1e6 }
  }
}


function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]
}

// --- raw engine ----------------------------------------------------------------------------

async function rawAppend(p: Partition, gen: Payloads, total: number): Promise<Cost> {
  const sends = total / gen.perSend
  const inflight: Promise<unknown>[] = []
  const stop = startTimer()
  for (let b = 0; b < sends; b++) {
    if (inflight.length >= IN_FLIGHT) await inflight.shift()
    inflight.push(p.append(gen.take(b % IN_FLIGHT, b * gen.perSend)))
  }
  await Promise.all(inflight)
  return stop()
}

/** Reads the partition from its start, 1 MiB at a time, through `v`. */
function rawRead(p: Partition, v: Verifier): Cost {
  const stop = startTimer()
  let offset = p.logStartOffset
  const end = p.logEndOffset
  while (offset < end) {
    const r = p.read(offset, { maxBytes: 1024 * 1024 })
    for (const b of r.batches) {
      for (const rec of b.records(offset)) v.see(rec.offset, rec.value)
    }
    offset = r.nextOffset
  }
  const cost = stop()
  v.finish()
  return cost
}

// --- client API ----------------------------------------------------------------------------

/** `total / gen.perSend` sends, `window` in flight; timed until the last is acknowledged. */
async function produce(log: Log, topic: string, gen: Payloads, total: number, window: number, options?: ProducerOptions): Promise<Cost> {
  const producer = log.producer(options)
  await producer.connect()
  const per = gen.perSend
  const sends = total / per
  const inflight: Promise<void>[] = []
  const stop = startTimer()
  for (let b = 0; b < sends; b++) {
    if (inflight.length >= window) await inflight.shift()
    const first = b * per
    inflight.push(producer.send({ topic, messages: gen.take(b % window, first) }).then((r) => checkAcks(topic, r, first, per)))
  }
  await Promise.all(inflight)
  const cost = stop()
  await producer.close()
  return cost
}

type Mode = 'eachBatch' | 'eachMessage'

/**
 * A group consumer subscribed from the beginning, joined and delivering into `v`. `delivered`
 * resolves once `v` has seen `total` records; `onMessage` runs after each one (latency).
 */
async function startConsumer(log: Log, topic: string, mode: Mode, v: Verifier, options: ConsumerOptions = {}, onMessage?: (index: number) => void) {
  const consumer = log.consumer({ groupId: `bench-${topic}-${mode}-${JSON.stringify(options)}`, ...options })
  let finish!: () => void
  let crash!: (err: Error) => void
  const delivered = new Promise<void>((resolve, reject) => { finish = resolve; crash = reject })
  consumer.on('crash', (err: Error) => crash(err))
  await consumer.subscribe({ topics: [topic], fromBeginning: true })
  const run = mode === 'eachBatch'
    ? consumer.run({
      eachBatch: ({ batch }) => {
        for (const m of batch.messages) v.see(m.offset, m.value)
        if (v.next >= v.total) finish()
      },
    })
    : consumer.run({
      eachMessage: ({ message }) => {
        const i = v.next
        v.see(message.offset, message.value)
        onMessage?.(i)
        if (v.next >= v.total) finish()
      },
    })
  return { consumer, run, delivered: unlessStalled(delivered, () => v.next, v.what) }
}

async function consume(log: Log, topic: string, mode: Mode, total: number, valueBytes: number, options?: ConsumerOptions): Promise<Cost> {
  const v = new Verifier(`consume ${mode} ${topic}`, total, valueBytes)
  const stop = startTimer()
  const c = await startConsumer(log, topic, mode, v, options)
  await c.run
  await c.delivered
  const cost = stop()
  await c.consumer.close()
  v.finish()
  return cost
}

/** A tailing consumer (joined first, on an empty topic) and a producer together; timed until the last record is delivered. */
async function endToEnd(log: Log, topic: string, mode: Mode, gen: Payloads, total: number): Promise<Cost> {
  const v = new Verifier(`e2e ${mode} ${topic}`, total, gen.valueBytes)
  const c = await startConsumer(log, topic, mode, v)
  await c.run
  const producer = log.producer()
  await producer.connect()
  const per = gen.perSend
  const inflight: Promise<void>[] = []
  const stop = startTimer()
  for (let b = 0; b < total / per; b++) {
    if (inflight.length >= IN_FLIGHT) await inflight.shift()
    const first = b * per
    inflight.push(producer.send({ topic, messages: gen.take(b % IN_FLIGHT, first) }).then((r) => checkAcks(topic, r, first, per)))
  }
  await Promise.all(inflight)
  await c.delivered
  const cost = stop()
  await producer.close()
  await c.consumer.close()
  v.finish()
  return cost
}

/**
 * Open-loop pacing: record i is due INTERVAL_US × i after the start. A setImmediate loop sends
 * whatever is due (late ones go together, as they would in a real service that fell behind)
 * and stamps each with the time of its own send call.
 */
function paced(total: number, send: (i: number) => void): Promise<void> {
  return new Promise((resolve) => {
    let i = 0
    const start = nowUs()
    const tick = (): void => {
      const now = nowUs()
      while (i < total && now >= start + i * INTERVAL_US) send(i++)
      if (i < total) setImmediate(tick)
      else resolve()
    }
    tick()
  })
}

function latencyValue(valueBytes: number, i: number): Buffer {
  const v = Buffer.alloc(valueBytes, 0x5a)
  stamp(v, i)
  return v
}

/** send → eachMessage of a tailing group consumer, one record at a time; sorted µs after the warmup. */
async function apiLatency(log: Log, topic: string, valueBytes: number, options: ConsumerOptions = {}): Promise<Float64Array> {
  const total = LATENCY_WARMUP + LATENCY_SAMPLES
  const sentAt = new Float64Array(total)
  const lat = new Float64Array(LATENCY_SAMPLES)
  const v = new Verifier(`latency ${topic}`, total, valueBytes)
  const c = await startConsumer(log, topic, 'eachMessage', v, options, (i) => {
    if (i >= LATENCY_WARMUP) lat[i - LATENCY_WARMUP] = nowUs() - sentAt[i]
  })
  await c.run
  const producer = log.producer()
  await producer.connect()
  let failure: Error | null = null
  await paced(total, (i) => {
    const messages = [{ value: latencyValue(valueBytes, i) }]
    sentAt[i] = nowUs()
    producer.send({ topic, messages }).then((r) => checkAcks(topic, r, i, 1)).catch((err: Error) => { failure ??= err })
  })
  await c.delivered
  await producer.close()
  await c.consumer.close()
  if (failure !== null) throw failure
  v.finish()
  return lat.sort()
}

/**
 * The engine's floor for the same path: `Partition.append` of one record, an append listener
 * that resolves a promise, a reader that reads and decodes from its position.
 */
async function rawLatency(p: Partition, valueBytes: number): Promise<Float64Array> {
  const total = LATENCY_WARMUP + LATENCY_SAMPLES
  const sentAt = new Float64Array(total)
  const lat = new Float64Array(LATENCY_SAMPLES)
  const v = new Verifier(`raw latency ${p.topic}`, total, valueBytes)
  let wake: (() => void) | null = null
  const listener = (): void => {
    const w = wake
    wake = null
    w?.()
  }
  p.addAppendListener(listener)
  const reader = (async () => {
    while (v.next < total) {
      if (v.next >= p.logEndOffset) {
        await new Promise<void>((resolve) => { wake = resolve })
        continue
      }
      for (const rec of p.read(v.next).records()) {
        const i = v.next
        v.see(rec.offset, rec.value)
        if (i >= LATENCY_WARMUP) lat[i - LATENCY_WARMUP] = nowUs() - sentAt[i]
      }
    }
  })()
  let failure: Error | null = null
  await paced(total, (i) => {
    const records = [{ value: latencyValue(valueBytes, i) }]
    sentAt[i] = nowUs()
    p.append(records).catch((err: Error) => { failure ??= err })
  })
  await unlessStalled(reader, () => v.next, v.what)
  p.removeAppendListener(listener)
  if (failure !== null) throw failure
  v.finish()
  return lat.sort()
}

// --- the run -------------------------------------------------------------------------------

interface Row { workload: string, size: string, records: number, valueBytes: number, seconds: number[], cpuSeconds: number[], reference?: string }

const rows = new Map<string, Row>()
function record(workload: string, size: typeof SIZES[number], records: number, cost: Cost, reference?: string): void {
  const key = `${workload}\0${size.name}`
  let r = rows.get(key)
  if (r === undefined) rows.set(key, r = { workload, size: size.name, records, valueBytes: size.valueBytes, seconds: [], cpuSeconds: [], reference })
  r.seconds.push(cost.seconds)
  r.cpuSeconds.push(cost.cpuSeconds)
}
const rate = (r: Row): number => r.records / median(r.seconds)
/** Records per CPU-second: the rate the process would reach if it never waited. */
const cpuRate = (r: Row): number => r.records / median(r.cpuSeconds)

async function runSize(log: Log, size: typeof SIZES[number], run: number): Promise<void> {
  const { records: total, perSend, valueBytes } = size
  const tag = `${valueBytes}-${run}`
  const names: string[] = []
  const topic = async (kind: string): Promise<string> => {
    const name = `${kind}-${tag}`
    await log.createTopic(name, { config: TOPIC_CONFIG })
    names.push(name)
    return name
  }
  const batched = new Payloads(valueBytes, perSend, IN_FLIGHT)
  /** Not timed: reads back what a produce workload wrote. */
  const readBack = (name: string, count: number): void => {
    rawRead(log.topic(name).partition(0), new Verifier(`read back ${name}`, count, valueBytes))
  }

  if (only.includes('raw')) {
    const raw = log.topic(await topic('raw')).partition(0)
    record('raw append', size, total, await rawAppend(raw, batched, total))
    record('raw read', size, total, rawRead(raw, new Verifier(`raw read ${raw.topic}`, total, valueBytes)))
  }

  // Written through the producer (or, without it, by raw appends) and read by the consumers.
  const api = only.includes('produce') || only.includes('consume') ? await topic('api') : ''
  if (only.includes('produce')) {
    record(`produce send×${perSend}`, size, total, await produce(log, api, batched, total, IN_FLIGHT), 'raw append')
    if (!only.includes('consume')) readBack(api, total)

    // Batches of one send, as the raw loop appends them: the API's own cost, apart from the
    // default batchSize (16 KiB: about 120 records of 100 B a batch, against the raw 1000).
    const matched = await topic('api-matched')
    record(`produce send×${perSend} batch=send`, size, total, await produce(log, matched, batched, total, IN_FLIGHT, { batchSize: perSend * (valueBytes + 32) }), 'raw append')
    readBack(matched, total)

    const singles = Math.max(SINGLE_WINDOW, Math.round(total / 10 / SINGLE_WINDOW) * SINGLE_WINDOW)
    const single = await topic('single')
    record(`produce send×1, ${SINGLE_WINDOW} out`, size, singles, await produce(log, single, new Payloads(valueBytes, 1, SINGLE_WINDOW), singles, SINGLE_WINDOW), 'raw append')
    readBack(single, singles)
  } else if (only.includes('consume')) {
    await rawAppend(log.topic(api).partition(0), batched, total)
  }

  if (only.includes('consume')) {
    record('consume eachBatch', size, total, await consume(log, api, 'eachBatch', total, valueBytes), 'raw read')
    record('consume eachMessage', size, total, await consume(log, api, 'eachMessage', total, valueBytes), 'raw read')
    // Polls as large as the raw loop's 1 MiB reads: the API's own cost, apart from the default
    // maxPollRecords (500, of the ~9,500 records of 100 B each 1 MiB read holds).
    record('consume eachBatch poll=10k', size, total, await consume(log, api, 'eachBatch', total, valueBytes, { maxPollRecords: 10_000 }), 'raw read')
  }

  if (only.includes('e2e')) {
    record('e2e eachBatch', size, total, await endToEnd(log, await topic('e2e-batch'), 'eachBatch', batched, total), 'raw append+read')
    record('e2e eachMessage', size, total, await endToEnd(log, await topic('e2e-message'), 'eachMessage', batched, total), 'raw append+read')
  }

  for (const name of names) await log.deleteTopic(name)
}

function fmt(n: number): string {
  return n >= 1e6 ? (n / 1e6).toFixed(2) + ' M' : n >= 1e3 ? (n / 1e3).toFixed(1) + ' k' : n.toFixed(0)
}

const root = args.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'strand-bench-e2e-'))
const started = Date.now()
console.log(`strand end-to-end benchmark — node ${process.version}, ${os.cpus().length} cores, load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}, dir ${root}${quick ? ', --quick' : ''}`)
console.log(`flush 'os'; producer defaults (lingerMs 0, batchSize 16384, acks 'all', idempotent); consumer defaults (maxPollRecords 500, 1 MiB per partition fetch); ${RUNS === 1 ? '1 run' : `median of ${RUNS} runs`}`)
const dir = fs.mkdtempSync(path.join(root, 'log-'))
const log = await Log.open(dir, { retentionCheckIntervalMs: 0 })
/** Latency paths: name, sorted µs, whether the p99 target applies. */
const latencies: Array<[string, Float64Array, boolean]> = []
try {
  // The first group consumer creates the offsets topic (fsyncs included): not in a timed row.
  await log.createTopic('warmup', { config: TOPIC_CONFIG })
  await produce(log, 'warmup', new Payloads(100, 100, 1), 100, 1)
  await consume(log, 'warmup', 'eachMessage', 100, 100)
  await log.deleteTopic('warmup')
  // Latency first, while the disk is idle: the throughput runs leave gigabytes of dirty pages
  // whose writeback would otherwise throttle these writes.
  if (only.includes('latency')) {
    for (const name of ['latency-api', 'latency-api-nocommit', 'latency-raw']) await log.createTopic(name, { config: TOPIC_CONFIG })
    latencies.push(['send → eachMessage (tailing group consumer)', await apiLatency(log, 'latency-api', 100), true])
    // Auto-commit appends to the offsets topic (flush 'always') and the delivery loop waits
    // for that fsync: this row shows what the commits add to the tail.
    latencies.push(['  the same, autoCommit off', await apiLatency(log, 'latency-api-nocommit', 100, { autoCommit: false }), false])
    latencies.push(['raw: append → listener → read', await rawLatency(log.topic('latency-raw').partition(0), 100), false])
    process.stderr.write(`  latency done (${((Date.now() - started) / 1000).toFixed(0)} s)\n`)
  }
  for (let run = 0; run < RUNS; run++) {
    for (const size of SIZES) {
      await runSize(log, size, run)
      process.stderr.write(`  run ${run + 1}/${RUNS} ${size.name} done (${((Date.now() - started) / 1000).toFixed(0)} s)\n`)
    }
  }
} finally {
  await log.close()
  if (args.dir === undefined) fs.rmSync(root, { recursive: true, force: true })
  else fs.rmSync(dir, { recursive: true, force: true })
}

/** The engine's rate (by `rateOf`) a row is compared with, or undefined when its raw rows did not run. */
function referenceRate(r: Row, rateOf: (r: Row) => number): number | undefined {
  const raw = (name: string): number | undefined => {
    const row = rows.get(`${name}\0${r.size}`)
    return row === undefined ? undefined : rateOf(row)
  }
  if (r.reference !== 'raw append+read') return r.reference === undefined ? undefined : raw(r.reference)
  const a = raw('raw append')
  const b = raw('raw read')
  // One thread does both: the engine's bound is the harmonic sum of the two rates.
  return a === undefined || b === undefined ? undefined : 1 / (1 / a + 1 / b)
}

if (rows.size > 0) {
  console.log('')
  console.log('                                                            wall clock                    |   CPU time')
  console.log('workload                       size    records       rec/s  spread     MB/s  API/raw        |  ns/rec  API/raw  (reference)')
  for (const r of rows.values()) {
    const ref = referenceRate(r, rate)
    const cpuRef = referenceRate(r, cpuRate)
    const ratio = (x: number | undefined): string => x === undefined ? ''.padStart(12) : `${x.toFixed(2).padStart(7)} ${x >= TARGET_RATIO ? 'ok  ' : 'MISS'}`
    // Spread: half the gap between the slowest and fastest run, relative to the median.
    const spread = r.seconds.length > 1 ? `±${((Math.max(...r.seconds) - Math.min(...r.seconds)) / median(r.seconds) * 50).toFixed(0)}%` : ''
    console.log(
      `${r.workload.padEnd(30)} ${r.size.padEnd(6)} ${fmt(r.records).padStart(8)}  ${fmt(rate(r)).padStart(10)}  ${spread.padStart(6)}  ${(rate(r) * r.valueBytes / 1e6).toFixed(0).padStart(7)}  ${ratio(ref === undefined ? undefined : rate(r) / ref)}  |  ` +
      `${(1e9 / cpuRate(r)).toFixed(0).padStart(6)}  ${cpuRef === undefined ? '' : (cpuRate(r) / cpuRef).toFixed(2).padStart(7)}  ${r.reference === undefined ? '' : `(${r.reference})`}`,
    )
  }
}
if (latencies.length > 0) {
  console.log('')
  console.log(`latency, 100 B, one record every ${INTERVAL_US} µs, ${fmt(LATENCY_SAMPLES)} samples after ${fmt(LATENCY_WARMUP)} warmup:`)
  console.log('path                                              p50        p99      p99.9        max')
  for (const [name, lat, target] of latencies) {
    const p99 = percentile(lat, 0.99)
    const us = (x: number): string => `${x.toFixed(1).padStart(8)} µs`
    console.log(`${name.padEnd(44)} ${us(percentile(lat, 0.5))} ${us(p99)} ${us(percentile(lat, 0.999))} ${us(lat[lat.length - 1])}${target ? `  p99 ${p99 < TARGET_P99_US ? 'ok' : 'MISS'} (target < ${TARGET_P99_US} µs)` : ''}`)
  }
}
console.log('')
console.log(`load after: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`)
console.log(`verified: ${verifiedReads} reads, every count, order and payload sum matched (${((Date.now() - started) / 1000).toFixed(1)} s)`)
