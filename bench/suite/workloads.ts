/**
 * The measured loops, run inside a task's child process against one `Store`. Every system
 * runs the same code; only the store differs. Timed sections cover the work itself (opening a
 * store is timed only in W6, where it is the point), after an untimed warm-up (see warmUp).
 * Peak RSS is taken at the end of the timed section, before any untimed read-back, so it is
 * the workload's own (warm-up included: it is a tenth of the size).
 *
 * Every task verifies what it read (see payload.ts) and throws on any mismatch; what it
 * verified goes into its result.
 */
import fs from 'node:fs'
import { Checker, type Verified, SLOTS, Payloads, checkValue, checksumTerm, makeValue } from './payload.js'
import type { Task } from './plan.js'
import type { Durability, Store, System, Value } from './system.js'

/** What a task reports to the parent. */
export interface TaskResult {
  /** Timed seconds (throughput workloads). */
  seconds?: number
  /** Records timed (throughput) or sampled (latency). */
  records?: number
  /** Payload bytes written or read in the timed section. */
  bytes?: number
  latencyUs?: { p50: number, p99: number, p999: number, max: number }
  /** W6: open until the record count is known. */
  openMs?: number
  /** process.resourceUsage().maxRSS at the end of the timed section, in bytes. */
  peakRssBytes: number
  verified: Verified & { what: string }
  /** kill-writer: records acknowledged before the kill (sent with `ready`). */
  acked?: number
}

export interface Hooks {
  /** Fraction of the task done, for the progress display. */
  progress(fraction: number): void
  /** kill-writer: everything up to `acked` is acknowledged; the parent may kill now. */
  ready(acked: number): void
}

/** W5: the longest a pacing tick waits on the clock before yielding to the event loop. */
const SPIN_US = 10

/** A phase that makes no progress for this long has lost records: fail rather than hang. */
const STALL_MS = 60_000

/**
 * µs since the process started. W5's pacing loop reads the clock about a million times a
 * second, so the clock must not allocate: process.hrtime.bigint() allocates BigInts and
 * performance.now() heap numbers (here, a young-generation GC of ~0.25 ms every 20 ms or so,
 * which is W5's p99 for every system); process.hrtime()'s array is optimised away.
 */
function nowUs(): number {
  const t = process.hrtime()
  return t[0] * 1e6 + t[1] / 1e3
}

function peakRss(): number {
  return process.resourceUsage().maxRSS * 1024
}

function durabilityOf(t: Task): Durability {
  return t.workload === 'W2' ? 'power' : 'process'
}

function writersOf(t: Task): number {
  return t.workload === 'W2' ? t.writers : 1
}

/**
 * Runs the task's loop untimed on a scratch store of `warmupFraction` of the records (appends,
 * and for W3 a scan of them), then deletes it: the timed run then measures steady code — JIT-
 * compiled JavaScript, loaded native code — in every system alike, not a cold start.
 */
async function warmUp(t: Task, system: System): Promise<void> {
  const { valueBytes, perBatch, records } = t.size
  const batches = Math.max(1, Math.round((records / perBatch) * t.warmupFraction))
  const dir = `${t.dir}.warmup`
  fs.rmSync(dir, { recursive: true, force: true })
  fs.mkdirSync(dir, { recursive: true })
  const store = await system.open({ dir, valueBytes, durability: durabilityOf(t), writers: writersOf(t) })
  try {
    const payloads = new Payloads(valueBytes, perBatch)
    if (t.workload === 'W2') await appendConcurrently(store, payloads, batches, t.writers, NO_HOOKS)
    else await appendBatches(store, payloads, 0, batches, t.inFlight, NO_HOOKS)
    if (t.workload === 'W3') {
      const c = new Checker(`${t.system} warm-up`, valueBytes, perBatch, 0, batches * perBatch)
      await store.scan(0, (v) => { c.see(v) })
      c.finish()
    }
  } finally {
    await store.close()
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

const NO_HOOKS: Hooks = { progress: () => {}, ready: () => {} }

export async function runTask(t: Task, system: System, hooks: Hooks): Promise<TaskResult> {
  const fresh = t.workload === 'W1' || t.workload === 'W2' || t.workload === 'W5' || t.phase === 'build'
  if (fresh) {
    fs.rmSync(t.dir, { recursive: true, force: true })
    fs.mkdirSync(t.dir, { recursive: true })
  }
  if (t.phase === 'open-clean' || t.phase === 'open-killed') return openLarge(t, system)
  if (t.workload === 'W1' || t.workload === 'W2' || t.workload === 'W3') await warmUp(t, system)
  const store = await system.open({ dir: t.dir, valueBytes: t.size.valueBytes, durability: durabilityOf(t), writers: writersOf(t) })
  let closed = false
  try {
    let result: TaskResult
    switch (t.workload) {
      case 'W1': result = await appendAll(t, store, hooks); break
      case 'W2': result = await durableAppend(t, store, hooks); break
      case 'W3': result = await readAll(t, store, hooks); break
      case 'W4': result = await pointReads(t, store, hooks); break
      case 'W5': result = await tailLatency(t, store, hooks); break
      case 'W6':
        if (t.phase === 'build') result = await appendAll(t, store, hooks)
        else result = await killWriter(t, store, hooks)
        break
    }
    closed = true
    await store.close()
    return result
  } finally {
    if (!closed) await Promise.resolve(store.close()).catch(() => {})
  }
}

// --- W1 / W6 build: batched appends ---------------------------------------------------------

async function appendBatches(store: Store, payloads: Payloads, from: number, to: number, inFlight: number, hooks: Hooks): Promise<void> {
  const pending: Promise<void>[] = []
  const every = Math.max(1, Math.floor((to - from) / 100))
  for (let b = from; b < to; b++) {
    const r = store.append(payloads.batch(b))
    if (r !== undefined) {
      pending.push(r)
      // Slots are reused every SLOTS batches: at most inFlight (< SLOTS) may be outstanding.
      if (pending.length >= inFlight) await pending.shift()
    }
    if ((b - from) % every === 0) hooks.progress((b - from) / (to - from))
  }
  await Promise.all(pending)
}

async function appendAll(t: Task, store: Store, hooks: Hooks): Promise<TaskResult> {
  const { valueBytes, perBatch, records } = t.size
  if (records % perBatch !== 0) throw new Error(`${records} records do not make whole batches of ${perBatch}`)
  if (t.inFlight >= SLOTS) throw new Error(`inFlight ${t.inFlight} must stay below ${SLOTS} payload slots`)
  const payloads = new Payloads(valueBytes, perBatch)
  const t0 = nowUs()
  await appendBatches(store, payloads, 0, records / perBatch, t.inFlight, hooks)
  const seconds = (nowUs() - t0) / 1e6
  const peakRssBytes = peakRss()
  // Untimed: the count, and for W1 the whole data set read back (W3 times the read).
  const n = await store.count()
  if (n !== records) throw new Error(`appended ${records} records, the store counts ${n}`)
  let verified: TaskResult['verified']
  if (t.workload === 'W1') {
    const c = new Checker(`${t.system} W1 read-back`, valueBytes, perBatch, 0, records)
    await store.scan(0, (v) => { c.see(v) })
    verified = { ...c.finish(), what: 'read back in order' }
  } else {
    verified = { ...(await checkEnds(t, store, 0, records)), what: 'count; first and last batch' }
  }
  return { seconds, records, bytes: records * valueBytes, peakRssBytes, verified }
}

// --- W2: 64 writers, each awaiting a durable acknowledgement ---------------------------------

/**
 * `writers` concurrent writers; writer w appends batches w, w + writers, …, each after its
 * previous one was acknowledged. With writers ≤ SLOTS a slot is only reused by its own writer.
 */
async function appendConcurrently(store: Store, payloads: Payloads, batches: number, writers: number, hooks: Hooks): Promise<void> {
  let done = 0
  const writer = async (w: number): Promise<void> => {
    for (let b = w; b < batches; b += writers) {
      await store.append(payloads.batch(b))
      if (++done % 10 === 0) hooks.progress(done / batches)
    }
  }
  await Promise.all(Array.from({ length: Math.min(writers, batches) }, (_, w) => writer(w)))
}

async function durableAppend(t: Task, store: Store, hooks: Hooks): Promise<TaskResult> {
  const { valueBytes, perBatch, records } = t.size
  if (t.writers > SLOTS) throw new Error(`writers ${t.writers} must not exceed ${SLOTS} payload slots`)
  const payloads = new Payloads(valueBytes, perBatch)
  const t0 = nowUs()
  await appendConcurrently(store, payloads, records / perBatch, t.writers, hooks)
  const seconds = (nowUs() - t0) / 1e6
  const peakRssBytes = peakRss()
  const n = await store.count()
  if (n !== records) throw new Error(`appended ${records} records, the store counts ${n}`)
  // Writers interleave, so offsets need not follow record indexes: each record exactly once.
  const c = new Checker(`${t.system} W2 read-back`, valueBytes, perBatch, 0, records, false)
  await store.scan(0, (v) => { c.see(v) })
  return { seconds, records, bytes: records * valueBytes, peakRssBytes, verified: { ...c.finish(), what: 'read back, each record once' } }
}

// --- W3: read everything ---------------------------------------------------------------------

async function readAll(t: Task, store: Store, hooks: Hooks): Promise<TaskResult> {
  const { valueBytes, perBatch, records } = t.size
  const n = await store.count()
  if (n !== records) throw new Error(`the data set holds ${n} records, expected ${records}`)
  const c = new Checker(`${t.system} W3`, valueBytes, perBatch, 0, records)
  const every = Math.max(1, Math.floor(records / 100))
  const t0 = nowUs()
  await store.scan(0, (v) => {
    if (c.see(v) % every === 0) hooks.progress(c.seen / records)
  })
  const seconds = (nowUs() - t0) / 1e6
  const peakRssBytes = peakRss()
  return { seconds, records, bytes: records * valueBytes, peakRssBytes, verified: { ...c.finish(), what: 'every record in order' } }
}

// --- W4: random point reads ------------------------------------------------------------------

async function pointReads(t: Task, store: Store, hooks: Hooks): Promise<TaskResult> {
  const { valueBytes, perBatch, records } = t.size
  const period = SLOTS * perBatch
  const n = await store.count()
  if (n !== records) throw new Error(`the data set holds ${n} records, expected ${records}`)
  const lat = new Float64Array(t.lookups)
  let seed = 12345
  let checksum = 0
  // Untimed warm-up lookups (JIT, first touches) elsewhere in the key space, then the timed ones.
  for (let s = 0; s < Math.min(1000, t.lookups); s++) {
    const target = (s * 7919 + 17) % records
    let r = store.get(target)
    if (r instanceof Promise) r = await r
    if (checkValue(r, valueBytes, period) !== target) throw new Error(`${t.system} W4 warm-up: get(${target}) did not return record ${target}`)
  }
  for (let s = 0; s < t.lookups; s++) {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff
    const target = seed % records
    const t0 = nowUs()
    let r = store.get(target)
    if (r instanceof Promise) r = await r
    lat[s] = nowUs() - t0
    // Checked after the timed call, before the next (some stores reuse the buffer they hand out).
    const got = checkValue(r, valueBytes, period)
    if (got !== target) throw new Error(`${t.system} W4: get(${target}) returned ${r === undefined ? 'nothing' : got < 0 ? 'a damaged value' : `record ${got}`}`)
    checksum = (checksum + checksumTerm(got, valueBytes, period)) >>> 0
    if (s % 1000 === 0) hooks.progress(s / t.lookups)
  }
  const peakRssBytes = peakRss()
  lat.sort()
  return { records: t.lookups, latencyUs: quantiles(lat), peakRssBytes, verified: { records: t.lookups, checksum, what: 'each lookup returned the record asked for, intact' } }
}

// --- W5: append → tailing reader -------------------------------------------------------------

async function tailLatency(t: Task, store: Store, hooks: Hooks): Promise<TaskResult> {
  const V = t.size.valueBytes
  const total = t.latencyWarmup + t.latencySamples
  // Built before the clock starts; one record per append (perBatch 1 in the layout).
  const values = Array.from({ length: total }, (_, i) => makeValue(i, V, 1))
  const sentAt = new Float64Array(total)
  const lat = new Float64Array(t.latencySamples)
  const c = new Checker(`${t.system} W5`, V, 1, 0, total)
  const follower = await store.follow(0, (v) => {
    const at = nowUs()
    const i = c.see(v)
    if (i >= t.latencyWarmup && i < total) lat[i - t.latencyWarmup] = at - sentAt[i]
  })
  let failure: unknown = null
  // Open loop: record i is due intervalUs × i after the start; a setImmediate loop sends what
  // is due (late ones go together, as in a service that fell behind) and stamps each send.
  // Each setImmediate allocates, and a loop that yields a million times a second makes a young-
  // generation GC every few ms, which would be W5's p99 for every system: a tick with nothing
  // due first waits up to SPIN_US on the clock, so the loop yields ~10× less often.
  await new Promise<void>((resolve) => {
    let i = 0
    const start = nowUs()
    const tick = (): void => {
      let now = nowUs()
      const due = start + i * t.intervalUs
      if (now < due) {
        const until = Math.min(due, now + SPIN_US)
        while (now < until) now = nowUs()
      }
      while (i < total && now >= start + i * t.intervalUs) {
        const value = values[i]
        sentAt[i] = nowUs()
        try {
          const r = store.append({ first: i, values: [value], bytes: value })
          if (r !== undefined) r.catch((err: unknown) => { failure ??= err })
        } catch (err) {
          failure ??= err
        }
        i++
        if (i % 1000 === 0) hooks.progress(i / total)
      }
      if (i < total && failure === null) setImmediate(tick)
      else resolve()
    }
    tick()
  })
  await waitFor(() => c.seen >= total || failure !== null, () => c.seen, `${t.system} W5 reader`)
  const peakRssBytes = peakRss()
  await follower.stop()
  if (failure !== null) throw failure
  lat.sort()
  return { records: t.latencySamples, latencyUs: quantiles(lat), peakRssBytes, verified: { ...c.finish(), what: 'every record delivered in order' } }
}

// --- W6: open a large log, cleanly closed or killed -------------------------------------------

/** Appends after the built log until killed; tells the parent once `killAfter` more are acknowledged. */
async function killWriter(t: Task, store: Store, hooks: Hooks): Promise<TaskResult> {
  const { valueBytes, perBatch } = t.size
  const payloads = new Payloads(valueBytes, perBatch)
  const first = await store.count()
  if (first !== t.built) throw new Error(`the built log holds ${first} records, expected ${t.built}`)
  const from = first / perBatch
  const readyAt = from + Math.ceil(t.killAfter / perBatch)
  const pending: Promise<void>[] = []
  let acked = from
  // Keeps appending after `ready` (the kill should land mid-write); stops, failing, if no kill comes.
  const giveUp = readyAt + 10 * (readyAt - from)
  for (let b = from; b < giveUp; b++) {
    const r = store.append(payloads.batch(b))
    if (r !== undefined) {
      pending.push(r)
      if (pending.length >= t.inFlight) {
        await pending.shift()
        acked++
      }
    } else {
      acked++
    }
    if (acked === readyAt) {
      hooks.ready(acked * perBatch)
      await new Promise((resolve) => setImmediate(resolve))
    }
  }
  throw new Error('kill-writer was not killed')
}

/** W6's opens: time from nothing to a store that knows its record count; then check it. */
async function openLarge(t: Task, system: System): Promise<TaskResult> {
  const t0 = nowUs()
  const store = await system.open({ dir: t.dir, valueBytes: t.size.valueBytes, durability: 'process' })
  const n = await store.count()
  const openMs = (nowUs() - t0) / 1000
  const peakRssBytes = peakRss()
  try {
    const built = t.built ?? 0
    let verified: Verified
    if (t.phase === 'open-clean') {
      if (n !== built) throw new Error(`opened ${n} records after a clean close of ${built}`)
      verified = await checkEnds(t, store, 0, n)
    } else {
      // Every acknowledged record survives a process crash; nothing is invented past the end.
      const atLeast = t.atLeast ?? built
      if (n < atLeast) throw new Error(`opened ${n} records after kill -9; ${atLeast} were acknowledged`)
      const c = new Checker(`${t.system} W6 records after the clean close`, t.size.valueBytes, t.size.perBatch, built, n - built)
      await store.scan(built, (v) => { c.see(v) })
      const tail = c.finish()
      const head = await checkEnds(t, store, 0, Math.min(n, built))
      verified = { records: head.records + tail.records, checksum: (head.checksum + tail.checksum) >>> 0 }
    }
    return {
      openMs, peakRssBytes,
      verified: { ...verified, what: t.phase === 'open-clean' ? 'count; first and last batch' : `count ≥ ${t.atLeast} acknowledged; every record appended before the kill; first and last built batch` },
    }
  } finally {
    await store.close()
  }
}

/** Checks the count's first and last batch of records in [from, to) by get and scan. */
async function checkEnds(t: Task, store: Store, from: number, to: number): Promise<Verified> {
  const { valueBytes, perBatch } = t.size
  const period = SLOTS * perBatch
  const k = Math.min(perBatch, to - from)
  let checksum = 0
  for (let i = from; i < from + k; i++) {
    let v = store.get(i)
    if (v instanceof Promise) v = await v
    if (checkValue(v, valueBytes, period) !== i) throw new Error(`${t.system}: record ${i} is missing or damaged`)
    checksum = (checksum + checksumTerm(i, valueBytes, period)) >>> 0
  }
  // The scan runs to the store's end, which may lie past `to` (after the kill): check the first k.
  const c = new Checker(`${t.system} batch before ${to}`, valueBytes, perBatch, to - k, k)
  await store.scan(to - k, (v: Value) => {
    if (c.seen < k) c.see(v)
  })
  const tail = c.finish()
  return { records: 2 * k, checksum: (checksum + tail.checksum) >>> 0 }
}

// --- helpers ----------------------------------------------------------------------------------

function quantiles(sorted: Float64Array): { p50: number, p99: number, p999: number, max: number } {
  const q = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]
  return { p50: q(0.5), p99: q(0.99), p999: q(0.999), max: sorted[sorted.length - 1] }
}

/** Resolves once `done()`; rejects when `progress()` stands still for STALL_MS. */
function waitFor(done: () => boolean, progress: () => number, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let last = progress()
    let since = Date.now()
    const check = (): void => {
      if (done()) return resolve()
      const p = progress()
      if (p !== last) {
        last = p
        since = Date.now()
      } else if (Date.now() - since > STALL_MS) {
        return reject(new Error(`${what}: no progress for ${STALL_MS} ms at ${p} records`))
      }
      setTimeout(check, 1)
    }
    check()
  })
}
