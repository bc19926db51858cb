/**
 * The producer: kafkajs' `send`/`sendBatch` over the local engine, with Kafka's batching
 * (linger.ms, batch.size), bounded buffer (buffer.memory, max.block.ms) and idempotence.
 *
 * Invariants:
 * - Per partition, messages are appended in the order `send` accepted them, across batches
 *   and retries: a partition's batches drain one at a time, and a batch that waits for a
 *   retry holds back the ones behind it.
 * - A `send` is accepted into the buffer whole or not at all; what is accepted is either
 *   appended or reported as failed — to its promise, and to the next `flush()`/`close()`,
 *   which is where acks=0 failures surface. Nothing is dropped silently.
 * - With idempotence (the default) every batch carries this producer's id, epoch and the
 *   per-partition sequence of its first record; the partition answers a retried batch with
 *   its first offsets, so retries cannot duplicate (see ProducerState).
 * - Buffer memory is held from `send` until the batch is written to the partition (to the
 *   page cache); the flush policy's wait for durability holds no buffer.
 */
import { StrandError, closed, invalidArgument } from '../errors.js'
import { type Bytes, type Header, MAX_RECORD_TIMESTAMP } from '../codec/record-batch.js'
import type { Partition, AppendResult } from '../partition.js'
import type { Topic } from '../topic.js'
import type { Log } from '../log.js'
import { type Acks, checkAcks, optionalInt, stripUndefined } from './options.js'

export interface Message {
  key?: Bytes | null
  value: Bytes | null
  headers?: { [key: string]: Bytes | null } | Header[]
  /** Create time in ms since the epoch. @default Date.now() when appended */
  timestamp?: number
  /** Explicit partition; otherwise the topic's partitioner chooses by key. */
  partition?: number
}

export interface ProducerRecord {
  topic: string
  messages: readonly Message[]
  /** Overrides the producer's `acks` for this send. */
  acks?: Acks
}

export interface ProducerBatch {
  topicMessages: ReadonlyArray<{ topic: string, messages: readonly Message[] }>
  acks?: Acks
}

/** Where one message went. `offset` is -1 for acks=0, which resolves before offsets exist. */
export interface RecordMetadata {
  topic: string
  partition: number
  offset: number
}

export interface ProducerOptions {
  /** How long a batch may wait for more messages before it is written (linger.ms); 0 writes at the end of the current event-loop turn. @default 0 */
  lingerMs?: number
  /** A partition's batch is written as soon as it holds this many bytes, or the next message would take it past them (that message starts the next batch) (batch.size). @default 16384 */
  batchSize?: number
  /** Bytes of messages the producer may hold unwritten (buffer.memory). @default 33554432 */
  bufferMemory?: number
  /** How long `send` waits for buffer space before failing with BUFFER_FULL: 0 fails at once, -1 (or Infinity) waits without limit (max.block.ms). @default 60000 */
  maxBlockMs?: number
  /** 0: resolve once accepted into the buffer; 1: once the partition has it under its flush policy; 'all' (or -1): also once every in-sync replica has it (the high watermark passed it; the same as 1 without replication). @default 'all' */
  acks?: Acks
  /** Stamp batches with a producer id and sequences so that retries cannot duplicate (enable.idempotence). @default true */
  idempotent?: boolean
  /** Attempts after the first for a batch whose write failed with a retriable error (IO_ERROR). @default 5 */
  retries?: number
  /** Wait before a retry (retry.backoff.ms). @default 100 */
  retryBackoffMs?: number
}

export const PRODUCER_DEFAULTS: Readonly<Required<ProducerOptions>> = Object.freeze({
  lingerMs: 0,
  batchSize: 16384,
  bufferMemory: 32 * 1024 * 1024,
  maxBlockMs: 60_000,
  acks: 'all' as Acks,
  idempotent: true,
  retries: 5,
  retryBackoffMs: 100,
})

/** Rough bytes a record holds in the buffer: what the accounting charges, not what the batch will be. */
const RECORD_OVERHEAD = 32

/** One `send`: its messages' metadata fills in as their batches are written and acknowledged. */
class PendingSend {
  readonly results: RecordMetadata[]
  remaining: number
  readonly acks: Acks
  readonly resolve: (r: RecordMetadata[]) => void
  readonly reject: (err: Error) => void
  failed = false

  constructor(count: number, acks: Acks, resolve: (r: RecordMetadata[]) => void, reject: (err: Error) => void) {
    this.results = new Array(count)
    this.remaining = count
    this.acks = acks
    this.resolve = resolve
    this.reject = reject
  }
}

/** A partition's batch in the making: records plus, per record, which send and slot it answers. */
interface Batch {
  records: Message[]
  sends: PendingSend[]
  slots: number[]
  bytes: number
  createdAt: number
  sequence: number
  attempts: number
  /** Some send in the batch asked for acks='all': the batch waits for the high watermark. */
  acksAll: boolean
}

interface PartitionQueue {
  topic: Topic
  partition: Partition
  open: Batch | null
  ready: Batch[]
  /** Next sequence for this partition (idempotence). */
  sequence: number
  /** A batch is waiting for its retry: nothing behind it may be written. */
  retrying: boolean
}

interface BlockedSend { bytes: number, admit: () => void }

export class Producer {
  readonly #log: Log
  readonly #options: Required<ProducerOptions>
  readonly #queues = new Map<Partition, PartitionQueue>()
  #producerId = -1
  #connecting: Promise<void> | null = null
  #bufferUsed = 0
  #blocked: BlockedSend[] = []
  #drainScheduled = false
  /** A send's messages are being added to batches (see #admitBlocked). */
  #appending = false
  #lingerTimer: NodeJS.Timeout | null = null
  /** Acknowledgements not yet settled, for flush(). */
  #inFlight = new Set<Promise<unknown>>()
  /** Failures since the last flush()/close(), which report them. */
  #failures: Error[] = []
  #closing: Promise<void> | null = null

  /** @internal Use `log.producer(options)`. */
  constructor(log: Log, options: ProducerOptions = {}) {
    if (options === null || typeof options !== 'object') throw invalidArgument('options', 'an object', options)
    const o = { ...PRODUCER_DEFAULTS, ...stripUndefined(options) }
    optionalInt('lingerMs', o.lingerMs, 0, 2 ** 31 - 1)
    optionalInt('batchSize', o.batchSize, 1, 2 ** 30)
    optionalInt('bufferMemory', o.bufferMemory, 1, Number.MAX_SAFE_INTEGER)
    if (o.maxBlockMs !== Infinity && o.maxBlockMs !== -1) optionalInt('maxBlockMs', o.maxBlockMs, -1, 2 ** 31 - 1)
    checkAcks(o.acks)
    if (typeof o.idempotent !== 'boolean') throw invalidArgument('idempotent', 'a boolean', o.idempotent)
    optionalInt('retries', o.retries, 0, 2 ** 31 - 1)
    optionalInt('retryBackoffMs', o.retryBackoffMs, 0, 2 ** 31 - 1)
    this.#log = log
    this.#options = o
  }

  /** This producer's id (idempotence), or -1 before `connect` or without idempotence. */
  get producerId(): number { return this.#producerId }

  /** Allocates the producer id. Optional: the first send connects. */
  connect(): Promise<void> {
    if (this.#closing !== null) return Promise.reject(closed('producer'))
    if (this.#connecting === null) {
      this.#connecting = this.#options.idempotent
        ? this.#log.allocateProducerId().then((id) => { this.#producerId = id })
        : Promise.resolve()
    }
    return this.#connecting
  }

  /** Sends messages to one topic; resolves to each message's topic, partition and offset, in order. */
  send(record: ProducerRecord): Promise<RecordMetadata[]> {
    if (record === null || typeof record !== 'object') return Promise.reject(invalidArgument('record', 'an object { topic, messages }', record))
    return this.sendBatch({ topicMessages: [{ topic: record.topic, messages: record.messages }], acks: record.acks })
  }

  /** Sends to several topics at once; the result lists every message in input order. */
  sendBatch(batch: ProducerBatch): Promise<RecordMetadata[]> {
    try {
      if (this.#closing !== null) throw closed('producer')
      if (batch === null || typeof batch !== 'object' || !Array.isArray(batch.topicMessages)) throw invalidArgument('batch', 'an object { topicMessages: [...] }', batch)
      const acks = batch.acks ?? this.#options.acks
      checkAcks(acks)
      const routed = this.#route(batch.topicMessages)
      if (this.#connecting === null) this.connect()
      if (this.#producerId < 0 && this.#options.idempotent) {
        return this.#connecting!.then(() => this.#admit(routed, acks))
      }
      return this.#admit(routed, acks)
    } catch (err) {
      return Promise.reject(err)
    }
  }

  /**
   * Validates every message and picks its partition before anything is buffered, so a bad
   * message rejects the whole send and changes nothing.
   */
  #route(topicMessages: ProducerBatch['topicMessages']): Routed {
    const queues: PartitionQueue[] = []
    const messages: Message[] = []
    const sizes: number[] = []
    let bytes = 0
    for (let t = 0; t < topicMessages.length; t++) {
      const tm = topicMessages[t]
      if (tm === null || typeof tm !== 'object' || !Array.isArray(tm.messages)) throw invalidArgument(`topicMessages[${t}]`, 'an object { topic, messages: [...] }', tm)
      const topic = this.#log.topic(tm.topic)
      const n = topic.partitionCount
      // Messages mostly go where the one before went (one key, or the sticky partition).
      let lastPartition = -1
      let lastQueue: PartitionQueue | null = null
      for (let i = 0; i < tm.messages.length; i++) {
        const m = tm.messages[i]
        if (m === null || typeof m !== 'object') throw invalidArgument(`messages[${i}]`, 'a message object', m)
        const size = messageBytes(m, i)
        let p: number
        if (m.partition !== undefined) {
          p = m.partition
          if (!Number.isInteger(p) || p < 0 || p >= n) throw new StrandError('UNKNOWN_PARTITION', `messages[${i}].partition: topic ${topic.name} has partitions 0..${n - 1}, not ${String(p)}`)
        } else {
          p = topic.partitionFor(m.key)
        }
        if (p !== lastPartition) {
          lastQueue = this.#queueFor(topic, p)
          lastPartition = p
        }
        queues.push(lastQueue!)
        messages.push(m)
        sizes.push(size)
        bytes += size
      }
    }
    if (messages.length === 0) throw invalidArgument('messages', 'a non-empty array', [])
    if (bytes > this.#options.bufferMemory) {
      throw new StrandError('RECORD_TOO_LARGE', `a send of ${messages.length} messages holds about ${bytes} bytes, more than bufferMemory ${this.#options.bufferMemory}`)
    }
    return { queues, messages, sizes, bytes }
  }

  #queueFor(topic: Topic, id: number): PartitionQueue {
    const partition = topic.partition(id)
    let q = this.#queues.get(partition)
    if (q === undefined) {
      q = { topic, partition, open: null, ready: [], sequence: 0, retrying: false }
      this.#queues.set(partition, q)
    }
    return q
  }

  /** Takes the send into the buffer now, or once space frees up, or fails it with BUFFER_FULL. */
  #admit(routed: Routed, acks: Acks): Promise<RecordMetadata[]> {
    return new Promise((resolve, reject) => {
      const pending = new PendingSend(routed.messages.length, acks, resolve, reject)
      const enter = () => {
        this.#bufferUsed += routed.bytes
        this.#append(routed, pending)
        if (acks === 0) resolve(pending.results)
      }
      // FIFO: a send never overtakes one that is waiting for space.
      if (this.#blocked.length === 0 && this.#bufferUsed + routed.bytes <= this.#options.bufferMemory) return enter()
      const wait = this.#options.maxBlockMs
      if (wait === 0) return reject(bufferFull(routed.bytes, this.#bufferUsed, this.#options.bufferMemory, 0))
      const blocked: BlockedSend = { bytes: routed.bytes, admit: enter }
      this.#blocked.push(blocked)
      if (wait > 0 && wait !== Infinity) {
        const timer = setTimeout(() => {
          const i = this.#blocked.indexOf(blocked)
          if (i < 0) return
          this.#blocked.splice(i, 1)
          reject(bufferFull(routed.bytes, this.#bufferUsed, this.#options.bufferMemory, wait))
          this.#admitBlocked()
        }, wait)
        blocked.admit = () => { clearTimeout(timer); enter() }
      }
      // Space is only freed by writes: make sure the batches ahead get written.
      this.#scheduleDrain()
    })
  }

  #admitBlocked(): void {
    // Space freed by a write made while a send is being appended: admitting the next send now
    // would put its messages among that send's. The loop that admitted it (or, for a send
    // that did not wait, an empty queue) takes the next one once the append is done.
    if (this.#appending) return
    while (this.#blocked.length > 0 && this.#bufferUsed + this.#blocked[0].bytes <= this.#options.bufferMemory) {
      this.#blocked.shift()!.admit()
    }
  }

  #append(routed: Routed, pending: PendingSend): void {
    this.#appending = true
    try {
      this.#appendMessages(routed, pending)
    } finally {
      this.#appending = false
    }
  }

  #appendMessages(routed: Routed, pending: PendingSend): void {
    const { queues, messages, sizes } = routed
    const now = Date.now()
    for (let i = 0; i < messages.length; i++) {
      const q = queues[i]
      let b = q.open
      // A message that would take the batch past batchSize starts a new one (Kafka's rule), so
      // only a batch of one message is ever larger: a message too large for the partition
      // fails by itself instead of taking its batch-mates down with it, and a batchSize up to
      // the topic's maxMessageBytes never builds a batch the partition refuses.
      if (b !== null && b.bytes + sizes[i] > this.#options.batchSize) {
        q.ready.push(b)
        q.open = b = null
        this.#drain(q)
      }
      if (b === null) b = q.open = { records: [], sends: [], slots: [], bytes: 0, createdAt: now, sequence: -1, attempts: 0, acksAll: false }
      // acks=0 resolves with these now; other sends get theirs once the batch is written (#complete).
      if (pending.acks === 0) pending.results[i] = { topic: q.topic.name, partition: q.partition.id, offset: -1 }
      b.records.push(messages[i])
      if (pending.acks === 'all' || pending.acks === -1) b.acksAll = true
      b.sends.push(pending)
      b.slots.push(i)
      b.bytes += sizes[i]
      if (b.bytes >= this.#options.batchSize) {
        q.ready.push(b)
        q.open = null
        this.#drain(q)
      }
    }
    if (this.#options.lingerMs === 0) this.#scheduleDrain()
    else if (this.#lingerTimer === null) this.#lingerTimer = setTimeout(() => this.#lingerExpired(), this.#options.lingerMs)
  }

  /** lingerMs 0: write at the end of this event-loop turn, so sends made together share batches. */
  #scheduleDrain(): void {
    if (this.#drainScheduled) return
    this.#drainScheduled = true
    setImmediate(() => {
      this.#drainScheduled = false
      this.#drainAll(0)
    })
  }

  #lingerExpired(): void {
    this.#lingerTimer = null
    const next = this.#drainAll(this.#options.lingerMs)
    if (next >= 0) this.#lingerTimer = setTimeout(() => this.#lingerExpired(), next)
  }

  /** Closes open batches at least `minAge` ms old and drains; returns ms until the next one is due, or -1. */
  #drainAll(minAge: number): number {
    const now = Date.now()
    let due = -1
    const topics = new Set<Topic>()
    for (const q of this.#queues.values()) {
      const b = q.open
      if (b !== null) {
        const age = now - b.createdAt
        if (age >= minAge) {
          q.ready.push(b)
          q.open = null
          topics.add(q.topic)
        } else {
          const wait = minAge - age
          if (due < 0 || wait < due) due = wait
        }
      }
      if (q.ready.length > 0) this.#drain(q)
    }
    // Sticky null-key placement moves on once a batch is closed (KIP-480's rule).
    for (const t of topics) t.nextBatch()
    return due
  }

  /** Writes the partition's ready batches in order; stops at one that waits for a retry. */
  #drain(q: PartitionQueue): void {
    while (q.ready.length > 0 && !q.retrying) {
      const b = q.ready[0]
      let ack: Promise<AppendResult>
      try {
        if (b.sequence < 0) b.sequence = q.sequence
        const producer = this.#producerId >= 0 ? { id: this.#producerId, epoch: 0, sequence: b.sequence } : undefined
        ack = q.partition.commit(q.partition.prepare(b.records, { producer, acks: b.acksAll ? 'all' : 1 }))
      } catch (err) {
        if (isRetriable(err) && b.attempts < this.#options.retries) {
          b.attempts++
          q.retrying = true
          // Not unref'd: a caller awaiting this batch may be all that keeps the process alive.
          setTimeout(() => { q.retrying = false; this.#drain(q) }, this.#options.retryBackoffMs)
          return
        }
        q.ready.shift()
        this.#release(b.bytes)
        this.#fail(b, err as Error)
        continue
      }
      q.ready.shift()
      q.sequence = (b.sequence + b.records.length) % 2 ** 31
      this.#release(b.bytes)
      const settled = ack.then((r) => this.#complete(q, b, r.baseOffset), (err) => this.#fail(b, err))
      this.#inFlight.add(settled)
      settled.then(() => this.#inFlight.delete(settled))
    }
  }

  #release(bytes: number): void {
    this.#bufferUsed -= bytes
    if (this.#blocked.length > 0) this.#admitBlocked()
  }

  /**
   * Fills in the sends' metadata. Each object is made here with its final offset, not made at
   * `send` with -1 and patched: offsets come from the engine as heap doubles, and writing one
   * over the small integer -1 left V8 deoptimising this loop on every batch (hundreds of times
   * a run, a third of the producer's time in bench/produce-consume.ts).
   */
  #complete(q: PartitionQueue, b: Batch, baseOffset: number): void {
    const topic = q.topic.name
    const partition = q.partition.id
    for (let i = 0; i < b.sends.length; i++) {
      const s = b.sends[i]
      if (s.acks !== 0) s.results[b.slots[i]] = { topic, partition, offset: baseOffset + i }
      if (--s.remaining === 0 && !s.failed && s.acks !== 0) s.resolve(s.results)
    }
  }

  #fail(b: Batch, err: Error): void {
    this.#failures.push(err)
    for (const s of b.sends) {
      s.remaining--
      if (!s.failed) {
        s.failed = true
        s.reject(err)
      }
    }
  }

  /**
   * Writes everything buffered now and waits for every acknowledgement. Rejects with an
   * AggregateError of what failed since the last flush (including acks=0 sends, whose
   * promises had resolved before the failure).
   */
  async flush(): Promise<void> {
    // Sends made before the producer id arrived are admitted when it does (sendBatch); their
    // callbacks were queued before this one, so after this await they are in the buffer.
    if (this.#connecting !== null && this.#producerId < 0) await this.#connecting.catch(() => {})
    if (this.#lingerTimer !== null) {
      clearTimeout(this.#lingerTimer)
      this.#lingerTimer = null
    }
    for (;;) {
      this.#drainAll(0)
      const pending = [...this.#inFlight]
      const waitingRetry = [...this.#queues.values()].some((q) => q.ready.length > 0 || q.open !== null)
      if (pending.length === 0 && !waitingRetry && this.#blocked.length === 0) break
      if (pending.length > 0) await Promise.all(pending)
      else await new Promise((r) => setTimeout(r, Math.max(1, Math.min(this.#options.retryBackoffMs, 10))))
    }
    const failures = this.#failures.splice(0)
    if (failures.length > 0) throw new AggregateError(failures, `${failures.length} batch(es) failed: ${failures[0].message}`)
  }

  /** Flushes, then refuses further sends. Rejects like `flush` if anything failed. Idempotent. */
  close(): Promise<void> {
    if (this.#closing === null) {
      this.#closing = this.flush().finally(() => this.#log.forgetClient(this))
    }
    return this.#closing
  }

  /** kafkajs' name for `close`. */
  disconnect(): Promise<void> {
    return this.close()
  }
}

interface Routed {
  queues: PartitionQueue[]
  messages: Message[]
  /** Each message's charge against bufferMemory. */
  sizes: number[]
  bytes: number
}

/**
 * Also checks what the encoder would refuse (timestamp, headers): found only when the batch
 * is written, a bad message would fail every send sharing its batch.
 */
function messageBytes(m: Message, i: number): number {
  const t = m.timestamp
  if (t !== undefined && !(Number.isInteger(t) && t >= 0 && t <= MAX_RECORD_TIMESTAMP)) throw invalidArgument(`messages[${i}].timestamp`, 'an integer in [0, 2^52) (ms)', t)
  return RECORD_OVERHEAD + byteLength(m.key, i, 'key') + byteLength(m.value, i, 'value') + (m.headers === undefined ? 0 : headerBytes(m.headers, i))
}

/** The argument's name is only built for the error: two strings a message was a measurable cost. */
function byteLength(v: unknown, i: number, field: 'key' | 'value' | 'headers'): number {
  if (v === null || v === undefined) return 0
  if (typeof v === 'string') return v.length
  if (v instanceof Uint8Array) return v.byteLength
  throw invalidArgument(`messages[${i}].${field}`, 'a Buffer, Uint8Array, string or null', v)
}

function headerBytes(h: unknown, i: number): number {
  if (h === null || typeof h !== 'object') throw invalidArgument(`messages[${i}].headers`, 'an object or an array of {key, value}', h)
  let n = 0
  if (Array.isArray(h)) {
    for (const x of h) {
      if (x === null || typeof x !== 'object' || typeof x.key !== 'string') throw invalidArgument(`messages[${i}].headers`, 'entries of {key: string, value}', x)
      n += x.key.length + byteLength(x.value, i, 'headers') + 8
    }
  } else {
    for (const k of Object.keys(h)) n += k.length + byteLength((h as { [k: string]: unknown })[k], i, 'headers') + 8
  }
  return n
}

function isRetriable(err: unknown): boolean {
  return err instanceof StrandError && err.code === 'IO_ERROR'
}

function bufferFull(bytes: number, used: number, limit: number, waited: number): StrandError {
  return new StrandError('BUFFER_FULL', `producer buffer full: a send of about ${bytes} bytes did not fit (${used} of ${limit} bytes held) after ${waited} ms (maxBlockMs)`)
}
