/**
 * The consumer: kafkajs' `subscribe`/`run`/`seek`/`pause` (and `for await`) over the local
 * engine, in a consumer group or on partitions it assigns itself.
 *
 * Invariants:
 * - Per partition, records are delivered in offset order; the position only moves forward,
 *   except by `seek` or an offset reset.
 * - What the consumer commits is the offset after the last record whose handler finished
 *   (eachMessage), that eachBatch resolved, or that the iterator moved past — never a record
 *   still being handled. Commits go through the group coordinator, which refuses them once
 *   the partition has moved to another member.
 * - A partition being revoked is delivered no further: its current handler finishes, its
 *   position is committed (auto-commit), `onPartitionsRevoked` runs, and only then may the
 *   coordinator hand it to another member.
 * - Tailing costs nothing while idle: a consumer at the end of its partitions waits on the
 *   partitions' append listeners (up to `maxWaitMs`), never polling the disk.
 */
import { EventEmitter } from 'node:events'
import { StrandError, closed, invalidArgument } from '../errors.js'
import type { Record, RecordBatch } from '../codec/record-batch.js'
import type { Partition } from '../partition.js'
import type { Log } from '../log.js'
import type { GroupCoordinator, GroupMember } from '../group/coordinator.js'
import { type Assignor, type TopicPartition, tpKey } from '../group/assignors.js'
import { optionalInt, stripUndefined } from './options.js'

export type OffsetReset = 'earliest' | 'latest' | 'none'

export interface ConsumerOptions {
  /** The consumer group; without one the consumer only reads partitions given to `assign`, and owns its offsets. */
  groupId?: string
  /** Names this consumer in group descriptions. @default 'strand-consumer' */
  clientId?: string
  /** Removed from the group after this long without polling (session.timeout.ms). @default 45000 */
  sessionTimeoutMs?: number
  /** How long a revocation may take (handler finishing, commit, onPartitionsRevoked) before the member is removed. @default 60000 */
  rebalanceTimeoutMs?: number
  /** Commit delivered positions every `autoCommitIntervalMs`, on revocation and on close (enable.auto.commit). @default true */
  autoCommit?: boolean
  /** @default 5000 */
  autoCommitIntervalMs?: number
  /** Where to start without a committed offset, or when the position left the log (auto.offset.reset); 'none' fails with NO_OFFSET. @default 'latest' */
  autoOffsetReset?: OffsetReset
  /** A fetch waits for at least this many bytes… (fetch.min.bytes) @default 1 */
  minBytes?: number
  /** …or this long (fetch.max.wait.ms). @default 500 */
  maxWaitMs?: number
  /** Bytes read from one partition per fetch; a larger first batch is still returned whole (max.partition.fetch.bytes). @default 1048576 */
  maxBytesPerPartition?: number
  /** Records delivered per poll across partitions (max.poll.records). @default 500 */
  maxPollRecords?: number
  /** Partition assignment strategy of the group: 'range', 'roundrobin', 'sticky', or your own `Assignor` (members of one group must agree on its name). @default 'range' */
  assignor?: string | Assignor
  /** Called when partitions are revoked, before they move on; commit here if you commit by hand. */
  onPartitionsRevoked?: (partitions: TopicPartition[]) => void | Promise<void>
  /** Called when partitions are assigned. */
  onPartitionsAssigned?: (partitions: TopicPartition[]) => void | Promise<void>
}

type ConsumerDefaults = Required<Omit<ConsumerOptions, 'groupId' | 'onPartitionsRevoked' | 'onPartitionsAssigned'>>

export const CONSUMER_DEFAULTS: Readonly<ConsumerDefaults> = Object.freeze({
  clientId: 'strand-consumer',
  sessionTimeoutMs: 45_000,
  rebalanceTimeoutMs: 60_000,
  autoCommit: true,
  autoCommitIntervalMs: 5_000,
  autoOffsetReset: 'latest',
  minBytes: 1,
  maxWaitMs: 500,
  maxBytesPerPartition: 1024 * 1024,
  maxPollRecords: 500,
  assignor: 'range',
})

/** A delivered record, with where it came from. `key`/`value` are slices of the read buffer. */
export interface ConsumerMessage extends Record {
  topic: string
  partition: number
}

export interface EachMessagePayload {
  topic: string
  partition: number
  message: Record
  /** Tells the group this consumer is alive during a long handler. */
  heartbeat(): void
}

export interface Batch {
  topic: string
  partition: number
  messages: Record[]
  /** The partition's log end offset when the batch was read. */
  highWatermark: number
}

export interface EachBatchPayload {
  batch: Batch
  /** Marks records up to and including `offset` as processed (what auto-commit commits). */
  resolveOffset(offset: number): void
  heartbeat(): void
  /** Commits what was resolved so far if the auto-commit interval has passed. */
  commitOffsetsIfNecessary(): Promise<void>
  isRunning(): boolean
  /** True once the partition was revoked, sought or paused: stop handling this batch. */
  isStale(): boolean
}

export interface RunOptions {
  eachMessage?: (payload: EachMessagePayload) => Promise<void> | void
  eachBatch?: (payload: EachBatchPayload) => Promise<void> | void
  /** With eachBatch: resolve the whole batch when the handler returns. @default true */
  eachBatchAutoResolve?: boolean
}

export interface SubscribeOptions {
  topics?: Array<string | RegExp> | RegExp
  topic?: string | RegExp
  /** Without a committed offset, start at the log start instead of `autoOffsetReset`. */
  fromBeginning?: boolean
}

export interface PartitionLag {
  topic: string
  partition: number
  logEndOffset: number
  /** The group's committed offset, or null when there is none. */
  committed: number | null
  /** LEO − committed, or null without a committed offset. */
  lag: number | null
}

/** The consumer's view of one assigned partition. */
interface Assigned {
  readonly topic: string
  readonly partition: Partition
  /** Next offset to read, or -1 until set from the committed offset or the reset policy. */
  position: number
  /** Offset after the last record fully handled: what a commit commits. */
  consumed: number
  /** Last committed `consumed`, to skip commits that change nothing. */
  committed: number
  paused: boolean
  /** Bumped by seek, pause and revoke: a delivery that started before is stale. */
  epoch: number
  /**
   * Bumped by seek only. A handler that finishes after a pause or a revocation still counts
   * (the revocation commits it), but not after a seek, which chose another position.
   */
  sought: number
  /**
   * Being revoked: no longer fetched, while still assigned (and committable, as by
   * `commitOffsets()` in onPartitionsRevoked) until the revocation is done.
   */
  revoking: boolean
  fromBeginning: boolean
  /**
   * The batches of the last read, served until the position passes them (Kafka's fetch
   * buffer): one 1 MiB read feeds many polls of `maxPollRecords`. Dropped when the partition
   * was truncated since (`truncations`), which may have put other records at those offsets.
   */
  fetched: RecordBatch[]
  fetchedEnd: number
  fetchedTruncations: number
}

const RETRY_BACKOFF_MS = 100
const HANDLER_RETRIES = 5

export class Consumer extends EventEmitter {
  readonly #log: Log
  readonly #o: ConsumerDefaults & ConsumerOptions
  readonly #groupId: string | null
  #subscription: Array<string | RegExp> = []
  #fromBeginning = new Set<string | RegExp>()
  #assigned = new Map<string, Assigned>()
  #order: Assigned[] = []
  #next = 0
  #manual = false
  #memberId: string | null = null
  #coordinator: GroupCoordinator | null = null
  #joining: Promise<void> | null = null
  #running = false
  #started = false
  #loop: Promise<void> | null = null
  #delivering: Promise<unknown> | null = null
  #wake: (() => void) | null = null
  #lastCommit = 0
  #autoCommitting: Promise<void> | null = null
  #seeks = new Map<string, number>()
  #closing: Promise<void> | null = null
  readonly #listener = (): void => this.#wakeUp()

  /** @internal Use `log.consumer(options)`. */
  constructor(log: Log, options: ConsumerOptions = {}) {
    super()
    if (options === null || typeof options !== 'object') throw invalidArgument('options', 'an object', options)
    const o = { ...CONSUMER_DEFAULTS, ...stripUndefined(options) }
    if (o.groupId !== undefined && (typeof o.groupId !== 'string' || o.groupId.length === 0 || o.groupId.length > 255 || o.groupId.includes('\0'))) {
      throw invalidArgument('groupId', 'a non-empty string of up to 255 characters without NUL', o.groupId)
    }
    if (typeof o.clientId !== 'string' || o.clientId.length === 0) throw invalidArgument('clientId', 'a non-empty string', o.clientId)
    optionalInt('sessionTimeoutMs', o.sessionTimeoutMs, 1, 2 ** 31 - 1)
    optionalInt('rebalanceTimeoutMs', o.rebalanceTimeoutMs, 1, 2 ** 31 - 1)
    if (typeof o.autoCommit !== 'boolean') throw invalidArgument('autoCommit', 'a boolean', o.autoCommit)
    optionalInt('autoCommitIntervalMs', o.autoCommitIntervalMs, 0, 2 ** 31 - 1)
    if (o.autoOffsetReset !== 'earliest' && o.autoOffsetReset !== 'latest' && o.autoOffsetReset !== 'none') throw invalidArgument('autoOffsetReset', "'earliest', 'latest' or 'none'", o.autoOffsetReset)
    optionalInt('minBytes', o.minBytes, 0, 2 ** 31 - 1)
    optionalInt('maxWaitMs', o.maxWaitMs, 0, 2 ** 31 - 1)
    optionalInt('maxBytesPerPartition', o.maxBytesPerPartition, 1, 2 ** 31 - 1)
    optionalInt('maxPollRecords', o.maxPollRecords, 1, 2 ** 31 - 1)
    const strategy = o.assignor as unknown
    const isAssignor = strategy !== null && typeof strategy === 'object' && typeof (strategy as Assignor).assign === 'function' && typeof (strategy as Assignor).name === 'string'
    if (typeof strategy !== 'string' && !isAssignor) throw invalidArgument('assignor', "a strategy name ('range', 'roundrobin', 'sticky') or an Assignor { name, assign() }", strategy)
    this.#log = log
    this.#o = o
    this.#groupId = o.groupId ?? null
  }

  get groupId(): string | null { return this.#groupId }
  /** This consumer's member id in its group, or null outside one (or between rejoins). */
  get memberId(): string | null { return this.#memberId }

  /** Optional, for kafkajs symmetry: the consumer connects when it starts. */
  async connect(): Promise<void> {
    this.#checkOpen()
  }

  /** Adds topics (names or patterns) to the group subscription; call before `run`. */
  async subscribe(options: SubscribeOptions): Promise<void> {
    this.#checkOpen()
    if (options === null || typeof options !== 'object') throw invalidArgument('options', 'an object { topics | topic, fromBeginning }', options)
    if (this.#groupId === null) throw invalidArgument('groupId', 'set to subscribe (without a group, use assign())', undefined)
    if (this.#manual) throw invalidArgument('subscribe', 'not mixed with assign() on one consumer', 'assign() already called')
    if (this.#started) throw invalidArgument('subscribe', 'called before run() or iteration starts', 'already running')
    const list = options.topics instanceof RegExp ? [options.topics] : options.topics ?? (options.topic !== undefined ? [options.topic] : [])
    if (!Array.isArray(list) || list.length === 0) throw invalidArgument('topics', 'a non-empty list of topic names or patterns', options.topics ?? options.topic)
    for (const t of list) {
      if (typeof t === 'string') this.#log.topic(t)
      else if (!(t instanceof RegExp)) throw invalidArgument('topics[]', 'a topic name or a RegExp', t)
      this.#subscription.push(t)
      if (options.fromBeginning === true) this.#fromBeginning.add(t)
    }
  }

  /**
   * Reads these partitions without a group ("low-level API"): the caller owns the offsets
   * (`offset` here, or `seek`; otherwise `autoOffsetReset`, or the group's committed offset
   * when a groupId is set).
   */
  assign(partitions: ReadonlyArray<{ topic: string, partition: number, offset?: number }>): void {
    this.#checkOpen()
    if (this.#subscription.length > 0) throw invalidArgument('assign', 'not mixed with subscribe() on one consumer', 'subscribe() already called')
    if (!Array.isArray(partitions)) throw invalidArgument('partitions', 'an array of { topic, partition, offset? }', partitions)
    for (const tp of partitions) this.#log.topic(tp?.topic).partition(tp.partition)
    this.#manual = true
    this.#assignPartitions(partitions.map((tp) => ({ topic: tp.topic, partition: tp.partition })))
    for (const tp of partitions) if (tp.offset !== undefined) this.seek(tp.topic, tp.partition, tp.offset)
  }

  /** Starts delivering to `eachMessage` or `eachBatch`; resolves once the consumer has joined its group. */
  async run(options: RunOptions): Promise<void> {
    this.#checkOpen()
    if (options === null || typeof options !== 'object' || (typeof options.eachMessage !== 'function') === (typeof options.eachBatch !== 'function')) {
      throw invalidArgument('run options', 'an object with exactly one of eachMessage, eachBatch', options)
    }
    this.#start()
    this.#loop = this.#runLoop(options)
    await this.#joining
  }

  /** `for await (const message of consumer)`: auto-commit counts a message consumed once the next one is asked for. */
  async *[Symbol.asyncIterator](): AsyncGenerator<ConsumerMessage, void, undefined> {
    this.#checkOpen()
    this.#start()
    // The message in the caller's hands counts as being delivered: a revocation waits until
    // the caller asks for the next one (or leaves the loop), as it waits for a run() handler.
    let release: (() => void) | null = null
    try {
      while (this.#running) {
        const work = await this.#poll()
        for (const w of work) {
          const sought = w.state.sought
          for (const r of w.records) {
            if (w.state.epoch !== w.epoch || !this.#running) break
            w.state.position = r.offset + 1
            this.#delivering = new Promise<void>((resolve) => { release = resolve })
            yield { ...r, topic: w.state.topic, partition: w.state.partition.id }
            this.#delivering = null
            release!()
            // Asked for the next one: this one counts, even if the loop body paused its
            // partition (as in #deliverMessages); not after a seek.
            if (w.state.sought === sought) w.state.position = w.state.consumed = r.offset + 1
          }
        }
        this.#maybeAutoCommit()
      }
    } finally {
      this.#delivering = null
      ;(release as (() => void) | null)?.()
      if (this.#running) await this.close()
    }
  }

  #start(): void {
    if (this.#started) throw invalidArgument('consumer', 'started once (run() or one iterator)', 'already started')
    if (this.#subscription.length === 0 && !this.#manual) throw invalidArgument('consumer', 'subscribed or assigned before it starts', 'nothing to read')
    this.#started = true
    this.#running = true
    if (this.#subscription.length > 0) this.#joining = this.#join()
    // An assigned consumer in a group starts at the group's committed offsets, which only the
    // coordinator knows: load it before the first fetch (#initPosition reads it synchronously).
    else if (this.#groupId !== null) this.#joining = this.#log.groupCoordinator().then((c) => { this.#coordinator = c })
  }

  async #join(): Promise<void> {
    this.#coordinator = await this.#log.groupCoordinator()
    const member: GroupMember = {
      clientId: this.#o.clientId,
      subscription: this.#subscriptionFor(),
      sessionTimeoutMs: this.#o.sessionTimeoutMs,
      rebalanceTimeoutMs: this.#o.rebalanceTimeoutMs,
      revoke: (tps) => this.#revoke(tps),
      assign: (tps) => this.#assignPartitions(tps),
      fenced: (why) => this.#fenced(why),
    }
    const { memberId, rebalanced } = this.#coordinator.join(this.#groupId!, member, this.#o.assignor)
    this.#memberId = memberId
    await rebalanced
  }

  /** The coordinator takes names or one pattern; several patterns or a mix become one pattern. */
  #subscriptionFor(): string[] | RegExp {
    if (this.#subscription.every((t) => typeof t === 'string')) return this.#subscription as string[]
    const parts = this.#subscription.map((t) => (typeof t === 'string' ? `^${t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$` : `(?:${t.source})`))
    return new RegExp(parts.join('|'))
  }

  // --- group callbacks --------------------------------------------------------------------

  #assignPartitions(tps: TopicPartition[]): void {
    // A closing consumer takes nothing new: it is about to leave, and its leave hands the
    // partitions on. (When the Log closes, every consumer is closing, and the Log refuses
    // lookups.)
    if (this.#closing !== null) return
    for (const tp of tps) {
      const key = tpKey(tp.topic, tp.partition)
      if (this.#assigned.has(key)) continue
      const partition = this.#log.topic(tp.topic).partition(tp.partition)
      const fromBeginning = [...this.#fromBeginning].some((t) => (typeof t === 'string' ? t === tp.topic : (t.lastIndex = 0, t.test(tp.topic))))
      const a: Assigned = { topic: tp.topic, partition, position: -1, consumed: -1, committed: -1, paused: false, epoch: 0, sought: 0, revoking: false, fromBeginning, fetched: [], fetchedEnd: -1, fetchedTruncations: 0 }
      this.#assigned.set(key, a)
      partition.addAppendListener(this.#listener)
    }
    this.#order = [...this.#assigned.values()]
    if (tps.length > 0) {
      this.emit('partitions.assigned', tps)
      void Promise.resolve(this.#o.onPartitionsAssigned?.(tps)).catch((err) => this.emit('error.callback', err))
    }
    this.#wakeUp()
  }

  async #revoke(tps: TopicPartition[]): Promise<void> {
    const gone: Assigned[] = []
    for (const tp of tps) {
      const a = this.#assigned.get(tpKey(tp.topic, tp.partition))
      if (a === undefined) continue
      a.epoch++
      // Not fetched from now on: the poll loop goes on during the commit and the callback,
      // and would otherwise deliver records past what they commit (which the next owner then
      // delivers again), as a second owner of the partition.
      a.revoking = true
      gone.push(a)
    }
    await this.#delivering
    if (this.#o.autoCommit) await this.#commit(gone)
    await this.#o.onPartitionsRevoked?.(tps)
    for (const a of gone) this.#drop(a)
    this.emit('partitions.revoked', tps)
  }

  #fenced(why: string): void {
    for (const a of [...this.#assigned.values()]) this.#drop(a)
    this.#memberId = null
    this.emit('group.fenced', why)
    this.#wakeUp()
  }

  #drop(a: Assigned): void {
    a.epoch++
    a.partition.removeAppendListener(this.#listener)
    this.#assigned.delete(tpKey(a.topic, a.partition.id))
    this.#order = [...this.#assigned.values()]
  }

  // --- fetching ---------------------------------------------------------------------------

  /**
   * One poll: heartbeat (rejoining if the group dropped us), then records from the assigned,
   * unpaused partitions, waiting for appends while there are fewer than `minBytes`.
   */
  async #poll(): Promise<Array<{ state: Assigned, epoch: number, records: Record[], highWatermark: number }>> {
    const deadline = Date.now() + this.#o.maxWaitMs
    for (;;) {
      await this.#heartbeat()
      if (!this.#running) return []
      const { work, bytes } = this.#fetch()
      if (work.length > 0 && (bytes >= this.#o.minBytes || Date.now() >= deadline)) return work
      const left = deadline - Date.now()
      if (left <= 0) {
        // An empty poll with maxWaitMs 0 must still yield to the event loop: the run loop and
        // the iterator only await promises, so otherwise they starve timers and I/O (the very
        // appends they wait for) for good.
        if (work.length === 0) await new Promise((resolve) => setImmediate(resolve))
        return work
      }
      // Waiting for more: the next fetch must read past what is buffered, not serve it again.
      for (const a of this.#order) a.fetched = []
      // The heartbeat is the poll: an idle member waiting longer than its session would be
      // removed and rejoin, rebalancing the group over and over. Wake at a third of the
      // session (Kafka's heartbeat.interval.ms default ratio) to heartbeat and wait again.
      await this.#waitForAppend(Math.min(left, Math.max(1, Math.floor(this.#o.sessionTimeoutMs / 3))))
    }
  }

  async #heartbeat(): Promise<void> {
    if (this.#joining !== null) await this.#joining
    if (this.#subscription.length === 0 || this.#coordinator === null) return
    if (this.#memberId === null) {
      if (this.#running) {
        this.#joining = this.#join()
        await this.#joining
      }
      return
    }
    try {
      this.#coordinator.heartbeat(this.#groupId!, this.#memberId)
    } catch (err) {
      if ((err as StrandError).code !== 'UNKNOWN_MEMBER') throw err
      this.#fenced((err as Error).message)
    }
  }

  #fetch(): { work: Array<{ state: Assigned, epoch: number, records: Record[], highWatermark: number }>, bytes: number } {
    const work: Array<{ state: Assigned, epoch: number, records: Record[], highWatermark: number }> = []
    let budget = this.#o.maxPollRecords
    let bytes = 0
    const n = this.#order.length
    const start = this.#next
    // Start where the last poll stopped, so one busy partition cannot starve the others.
    for (let k = 0; k < n && budget > 0; k++) {
      const a = this.#order[(start + k) % n]
      const p = a.partition
      // Closed: its topic was deleted, and reading it would crash the consumer; the
      // rebalance that follows revokes it (an assigned consumer just reads nothing more).
      if (a.paused || a.revoking || p.isClosed) continue
      if (a.position < 0) this.#initPosition(a)
      // At the end of what is committed: wait. Past the end (the log was truncated) is out of
      // range like below the start, or the consumer would wait there and later skip what
      // fills the gap. The high watermark is the log end offset without replication.
      if (a.position >= p.highWatermark && a.position <= p.logEndOffset) continue
      if (a.position < p.logStartOffset || a.position > p.logEndOffset) {
        this.#reset(a, `position ${a.position} is outside [${p.logStartOffset}, ${p.logEndOffset}]`)
        if (a.position >= p.logEndOffset) continue
      }
      let batches = a.fetched
      if (batches.length === 0 || a.position >= a.fetchedEnd || a.position < batches[0].baseOffset || a.fetchedTruncations !== p.truncations) {
        const r = p.read(a.position, { maxBytes: this.#o.maxBytesPerPartition })
        batches = a.fetched = r.batches
        a.fetchedEnd = r.nextOffset
        a.fetchedTruncations = p.truncations
      }
      // Decode only what this poll delivers: a 1 MiB read of small records holds far more
      // than maxPollRecords; the rest waits in `fetched` for the next polls.
      const records: Record[] = []
      for (const b of batches) {
        if (records.length >= budget) break
        if (b.nextOffset <= a.position) continue
        b.decodeInto(records, a.position, undefined, budget - records.length)
        bytes += b.sizeInBytes
      }
      if (records.length === 0) continue
      budget -= records.length
      work.push({ state: a, epoch: a.epoch, records, highWatermark: p.highWatermark })
      this.#next = (start + k + 1) % n
    }
    return { work, bytes }
  }

  #initPosition(a: Assigned): void {
    const pending = this.#seeks.get(tpKey(a.topic, a.partition.id))
    if (pending !== undefined) {
      this.#seeks.delete(tpKey(a.topic, a.partition.id))
      a.position = a.consumed = pending
      return
    }
    const committed = this.#groupId === null ? null : this.#coordinatorSync()?.committed(this.#groupId, a.topic, a.partition.id) ?? null
    if (committed !== null) {
      a.position = a.consumed = a.committed = committed.offset
      return
    }
    this.#reset(a, 'no committed offset')
  }

  /** Offsets the group committed are needed before the coordinator is loaded by a manual consumer. */
  #coordinatorSync(): GroupCoordinator | null {
    return this.#coordinator ?? this.#log.loadedGroupCoordinator()
  }

  #reset(a: Assigned, why: string): void {
    const policy = a.fromBeginning ? 'earliest' : this.#o.autoOffsetReset
    if (policy === 'none') throw new StrandError('NO_OFFSET', `${a.topic}/${a.partition.id}: ${why}, and autoOffsetReset is 'none'`)
    a.position = a.consumed = policy === 'earliest' ? a.partition.logStartOffset : a.partition.highWatermark
  }

  #waitForAppend(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms)
      const self = this
      function done(): void {
        clearTimeout(timer)
        if (self.#wake === done) self.#wake = null
        resolve()
      }
      this.#wake = done
    })
  }

  #wakeUp(): void {
    const w = this.#wake
    if (w !== null) {
      this.#wake = null
      w()
    }
  }

  // --- delivering -------------------------------------------------------------------------

  async #runLoop(options: RunOptions): Promise<void> {
    try {
      await this.#joining
      while (this.#running) {
        const work = await this.#poll()
        for (const w of work) {
          if (!this.#running) break
          const delivery = options.eachBatch !== undefined ? this.#deliverBatch(w, options) : this.#deliverMessages(w, options)
          this.#delivering = delivery
          await delivery
          this.#delivering = null
        }
        this.#maybeAutoCommit()
      }
    } catch (err) {
      this.#running = false
      this.emit('crash', err)
    }
  }

  async #deliverMessages(w: { state: Assigned, epoch: number, records: Record[] }, options: RunOptions): Promise<void> {
    const a = w.state
    const payload: EachMessagePayload = { topic: a.topic, partition: a.partition.id, message: w.records[0], heartbeat: () => this.#heartbeatSync() }
    const sought = a.sought
    for (const r of w.records) {
      if (a.epoch !== w.epoch || !this.#running) return
      payload.message = r
      // Called directly (no closure, no extra async frame per message); retried only if it fails.
      let ret: Promise<void> | void
      try {
        ret = options.eachMessage!(payload)
      } catch (err) {
        ret = this.#retry(() => options.eachMessage!(payload), err)
      }
      if (ret !== undefined) await ret.then(undefined, (err) => this.#retry(() => options.eachMessage!(payload), err))
      // Handled, so consumed even if a pause or revocation came meanwhile: otherwise the
      // revocation commits before it and the next owner (or resume) delivers it again.
      if (a.sought === sought) a.position = a.consumed = r.offset + 1
    }
  }

  async #deliverBatch(w: { state: Assigned, epoch: number, records: Record[], highWatermark: number }, options: RunOptions): Promise<void> {
    const a = w.state
    const sought = a.sought
    // As in #deliverMessages: what the handler resolved counts after a pause or revocation, not after a seek.
    const resolve = (offset: number): void => {
      if (a.sought === sought && offset + 1 > a.consumed) a.position = a.consumed = offset + 1
    }
    const payload: EachBatchPayload = {
      batch: { topic: a.topic, partition: a.partition.id, messages: w.records, highWatermark: w.highWatermark },
      resolveOffset: resolve,
      heartbeat: () => this.#heartbeatSync(),
      commitOffsetsIfNecessary: async () => {
        this.#maybeAutoCommit()
        await this.#autoCommitting
      },
      isRunning: () => this.#running,
      isStale: () => a.epoch !== w.epoch,
    }
    await this.#withRetries(() => options.eachBatch!(payload))
    if (options.eachBatchAutoResolve !== false && a.epoch === w.epoch) resolve(w.records[w.records.length - 1].offset)
    // Whatever was not resolved is read again by the next poll.
    if (a.epoch === w.epoch) a.position = a.consumed
  }

  /** The retries after a first attempt failed with `err`; after HANDLER_RETRIES the consumer crashes. */
  async #retry(fn: () => Promise<void> | void, err: unknown): Promise<void> {
    if (!this.#running) throw err
    this.emit('handler.retry', err)
    await new Promise((r) => setTimeout(r, RETRY_BACKOFF_MS))
    for (let attempt = 1; ; attempt++) {
      try {
        await fn()
        return
      } catch (e) {
        if (attempt >= HANDLER_RETRIES || !this.#running) throw e
        this.emit('handler.retry', e)
        await new Promise((r) => setTimeout(r, RETRY_BACKOFF_MS * 2 ** attempt))
      }
    }
  }

  /** A throwing handler is retried with a backoff; after HANDLER_RETRIES the consumer crashes. */
  async #withRetries(fn: () => Promise<void> | void): Promise<void> {
    try {
      await fn()
    } catch (err) {
      await this.#retry(fn, err)
    }
  }

  #heartbeatSync(): void {
    if (this.#memberId !== null && this.#coordinator !== null) this.#coordinator.heartbeat(this.#groupId!, this.#memberId)
  }

  // --- offsets ----------------------------------------------------------------------------

  /**
   * Starts an auto-commit when the interval has passed. It runs in the background, like
   * Kafka's: delivery goes on while the offsets topic's fsync runs (a revocation and close
   * commit, and wait, on their own). A failure is reported as a 'commit.error' event.
   */
  #maybeAutoCommit(): void {
    if (!this.#o.autoCommit || this.#groupId === null || this.#autoCommitting !== null) return
    const now = Date.now()
    if (now - this.#lastCommit < this.#o.autoCommitIntervalMs) return
    this.#lastCommit = now
    this.#autoCommitting = this.#commit([...this.#assigned.values()])
      .catch((err) => { this.emit('commit.error', err) })
      .finally(() => { this.#autoCommitting = null })
  }

  async #commit(states: Assigned[]): Promise<void> {
    if (this.#groupId === null) return
    // A closed partition's topic was deleted: its position means nothing now.
    const todo = states.filter((a) => a.consumed >= 0 && a.consumed !== a.committed && !a.partition.isClosed)
    if (todo.length === 0) return
    const coordinator = this.#coordinator ?? await this.#log.groupCoordinator()
    const commits = todo.map((a) => ({ topic: a.topic, partition: a.partition.id, offset: a.consumed }))
    await coordinator.commit(this.#groupId, this.#memberId, commits)
    todo.forEach((a, i) => { a.committed = commits[i].offset })
  }

  /**
   * Commits the given offsets (the next offset to read, as in Kafka), or every assigned
   * partition's consumed position when called without arguments.
   */
  async commitOffsets(offsets?: ReadonlyArray<{ topic: string, partition: number, offset: number, metadata?: string }>): Promise<void> {
    if (this.#groupId === null) throw invalidArgument('groupId', 'set to commit offsets (a consumer without a group owns its offsets)', undefined)
    if (offsets === undefined) return this.#commit([...this.#assigned.values()])
    if (!Array.isArray(offsets)) throw invalidArgument('offsets', 'an array of { topic, partition, offset }', offsets)
    for (const o of offsets) {
      this.#log.topic(o?.topic).partition(o.partition)
      if (!Number.isSafeInteger(o.offset) || o.offset < 0) throw invalidArgument('offset', 'a safe integer >= 0', o.offset)
      if (o.metadata !== undefined && o.metadata !== null && typeof o.metadata !== 'string') throw invalidArgument('metadata', 'a string or null', o.metadata)
    }
    const coordinator = this.#coordinator ?? await this.#log.groupCoordinator()
    await coordinator.commit(this.#groupId, this.#memberId, offsets)
    for (const o of offsets) {
      const a = this.#assigned.get(tpKey(o.topic, o.partition))
      if (a !== undefined) a.committed = o.offset
    }
  }

  /** The group's committed offset of a partition (null when none). */
  async committed(topic: string, partition: number): Promise<number | null> {
    if (this.#groupId === null) return null
    const coordinator = this.#coordinator ?? await this.#log.groupCoordinator()
    return coordinator.committed(this.#groupId, topic, partition)?.offset ?? null
  }

  /** Per assigned partition: high watermark (the log end offset without replication) − committed offset. */
  async lag(): Promise<PartitionLag[]> {
    const out: PartitionLag[] = []
    for (const a of this.#assigned.values()) {
      const committed = await this.committed(a.topic, a.partition.id)
      const leo = a.partition.highWatermark
      out.push({ topic: a.topic, partition: a.partition.id, logEndOffset: leo, committed, lag: committed === null ? null : leo - committed })
    }
    return out
  }

  // --- position control -------------------------------------------------------------------

  /** Moves the next read of a partition to `offset`; accepts (topic, partition, offset) or kafkajs' ({ topic, partition, offset }). */
  seek(topicOrTarget: string | { topic: string, partition: number, offset: number }, partition?: number, offset?: number): void {
    const t = typeof topicOrTarget === 'string' ? { topic: topicOrTarget, partition: partition!, offset: offset! } : topicOrTarget
    if (t === null || typeof t !== 'object') throw invalidArgument('seek target', '{ topic, partition, offset }', t)
    const p = this.#log.topic(t.topic).partition(t.partition)
    if (!Number.isSafeInteger(t.offset) || t.offset < 0) throw invalidArgument('offset', 'a safe integer >= 0', t.offset)
    if (t.offset < p.logStartOffset || t.offset > p.logEndOffset) {
      throw new StrandError('OFFSET_OUT_OF_RANGE', `${t.topic}/${t.partition}: cannot seek to ${t.offset}, outside [${p.logStartOffset}, ${p.logEndOffset}]`)
    }
    const a = this.#assigned.get(tpKey(t.topic, t.partition))
    if (a === undefined) {
      this.#seeks.set(tpKey(t.topic, t.partition), t.offset)
      return
    }
    a.epoch++
    a.sought++
    a.position = a.consumed = t.offset
    this.#wakeUp()
  }

  /** Stops fetching from these topics (all their partitions, or the listed ones) until `resume`. */
  pause(targets: ReadonlyArray<{ topic: string, partitions?: number[] }>): void {
    this.#setPaused(targets, true)
  }

  resume(targets: ReadonlyArray<{ topic: string, partitions?: number[] }>): void {
    this.#setPaused(targets, false)
    this.#wakeUp()
  }

  /** The paused partitions. */
  paused(): TopicPartition[] {
    return [...this.#assigned.values()].filter((a) => a.paused).map((a) => ({ topic: a.topic, partition: a.partition.id }))
  }

  /** The partitions this consumer currently reads. */
  assignment(): TopicPartition[] {
    return [...this.#assigned.values()].map((a) => ({ topic: a.topic, partition: a.partition.id }))
  }

  #setPaused(targets: ReadonlyArray<{ topic: string, partitions?: number[] }>, paused: boolean): void {
    if (!Array.isArray(targets)) throw invalidArgument('targets', 'an array of { topic, partitions? }', targets)
    for (const t of targets) {
      this.#log.topic(t?.topic)
      for (const a of this.#assigned.values()) {
        if (a.topic !== t.topic || (t.partitions !== undefined && !t.partitions.includes(a.partition.id))) continue
        if (paused && !a.paused) {
          a.epoch++
          a.position = a.consumed
        }
        a.paused = paused
      }
    }
  }

  // --- closing ----------------------------------------------------------------------------

  #checkOpen(): void {
    if (this.#closing !== null) throw closed('consumer')
  }

  /** Stops delivering, commits (auto-commit), leaves the group. Idempotent. */
  close(): Promise<void> {
    if (this.#closing === null) this.#closing = this.#close()
    return this.#closing
  }

  /** kafkajs' name for `close`. */
  disconnect(): Promise<void> {
    return this.close()
  }

  /** Stops delivering without leaving the group (kafkajs' `stop`); `close` still needed. */
  async stop(): Promise<void> {
    this.#running = false
    this.#wakeUp()
    await this.#loop
  }

  async #close(): Promise<void> {
    this.#running = false
    this.#wakeUp()
    await this.#joining?.catch(() => {})
    await this.#loop
    await this.#autoCommitting
    try {
      if (this.#o.autoCommit && (this.#memberId !== null || this.#manual)) await this.#commit([...this.#assigned.values()])
      // Leaving the group revokes what the member owns, as Kafka's close does: a consumer
      // that commits by hand does so in onPartitionsRevoked, and would otherwise hand its
      // partitions on without committing. (Partitions a rebalance is revoking already got it.)
      const owned = [...this.#assigned.values()].filter((a) => !a.revoking).map((a) => ({ topic: a.topic, partition: a.partition.id }))
      if (this.#memberId !== null && owned.length > 0) {
        await this.#o.onPartitionsRevoked?.(owned)
        this.emit('partitions.revoked', owned)
      }
    } finally {
      for (const a of [...this.#assigned.values()]) this.#drop(a)
      if (this.#memberId !== null && this.#coordinator !== null) await this.#coordinator.leave(this.#groupId!, this.#memberId)
      this.#memberId = null
      this.#log.forgetClient(this)
    }
  }
}
