/**
 * A partition: an ordered run of segments holding one gap-free sequence of offsets.
 *
 * Invariants:
 * - Segments are contiguous: each one's base offset is the previous one's next offset. Only
 *   the last (active) segment takes appends; there is always one.
 * - `logStartOffset ≤ logEndOffset`. Offsets below `logStartOffset` are gone to readers even
 *   where their bytes still sit in the first segment.
 * - Appends run synchronously up to the page cache, so offsets are assigned in call order and
 *   a record is readable as soon as `append` returns its promise. What the promise's
 *   resolution means is the flush policy's business (docs/durability.md).
 * - Everything asynchronous — group-commit fdatasyncs, roll flushes, checkpoint writes,
 *   segment deletion — runs one task at a time on `#queue` (p-queue, concurrency 1), in the
 *   order it was asked for. fsync never runs on the event loop.
 * - `syncedOffset`: every offset below it is on disk. It never passes `logEndOffset`.
 * - After an I/O error that leaves the files in doubt, the partition refuses writes
 *   (PARTITION_FAILED) until the Log is reopened; reads keep working.
 * - Replication (docs/replication.md) gives a partition a `role`. Without one, the high
 *   watermark is the log end offset. With one, `highWatermark ≤ logEndOffset`, it never moves
 *   backwards except by truncation, readers see only what is below it (unless they ask for
 *   the log), only a leader takes appends, and every leader epoch stamped on a batch in the
 *   log is in the durable leader-epoch checkpoint before the batch is written.
 */
import fs from 'node:fs'
import path from 'node:path'
import PQueue from 'p-queue'
import { StrandError, closed, corrupt, invalidArgument } from './errors.js'
import { BatchEncoder, type Record, RecordBatch, type RecordInput, batchBaseOffset, batchLastOffset, batchLeaderEpoch, batchMaxTimestamp, batchSize, checkBatch, setBatchBaseOffset } from './codec/record-batch.js'
import type { TopicConfig } from './config.js'
import { Segment, type SegmentConfig } from './segment.js'
import { encodeFrame, readFrame, renameSync, syncDirectory, writeFrame } from './io/files.js'
import { readInt64BE, writeInt64BE } from './codec/int64.js'
import { ProducerState } from './producer-state.js'
import { type EpochEndOffset, LeaderEpochCache } from './leader-epoch-cache.js'

export interface Clock { now(): number }
export const systemClock: Clock = Object.freeze({ now: () => Date.now() })

export interface AppendResult {
  baseOffset: number
  lastOffset: number
  /** True when an idempotent producer's retry was recognised and nothing was written. */
  duplicate?: boolean
}

/** An idempotent producer's identity and the sequence of the batch's first record. */
export interface ProducerBatchId {
  id: number
  epoch: number
  sequence: number
}

/**
 * A partition's place in a cluster, set by the replication layer (lib/replication). A leader
 * takes appends and stamps its epoch on them; a follower takes only fetched batches.
 * `leaderEpoch` -1 with `follower` means "no leader known": a replicated partition before
 * the controller has spoken, or one this node does not replicate.
 */
export interface ReplicaRole {
  readonly kind: 'leader' | 'follower'
  readonly leaderEpoch: number
  /** The leader's in-sync replicas, itself included (acks='all' needs `minInsyncReplicas` of them). */
  readonly isrSize: number
  /** The fewest in-sync replicas an acks='all' append accepts. */
  readonly minInsyncReplicas: number
}

export interface AppendOptions {
  /**
   * When the promise resolves: 1 (the default) as the flush policy says; 'all' also waits for
   * the high watermark to pass the batch (every in-sync replica has it), and is refused with
   * NOT_ENOUGH_REPLICAS, writing nothing, when fewer than `minInsyncReplicas` are in sync.
   * Without replication the two are the same.
   */
  acks?: 1 | 'all'
  /** acks='all' only: reject with REQUEST_TIMED_OUT if the batch is not committed within this. @default 30000 */
  ackTimeoutMs?: number
  /** Leader epoch stamped into the batch when the partition has no role. @default -1 */
  leaderEpoch?: number
  /** Makes the append idempotent: a retry of a batch already written returns its offsets. */
  producer?: ProducerBatchId
}

/** Called synchronously after each append; must be cheap (set a flag, resolve a promise). */
export type AppendListener = (partition: Partition) => void

export interface ReadOptions {
  /** Soft limit on the bytes returned; the first batch is returned whole even if larger. @default 1048576 */
  maxBytes?: number
  /** Verify each batch's checksum and offsets before returning it. @default true */
  verify?: boolean
  /**
   * 'committed' (the default) reads only below the high watermark, as consumers must; 'log'
   * reads to the log end offset, as followers fetching from a leader do.
   */
  isolation?: 'committed' | 'log'
  /**
   * Read into this buffer instead of a new one, when it is large enough (about `maxBytes` +
   * `indexIntervalBytes` + 61): the returned batches are then slices of it, valid only until
   * the caller reuses it. For scans that decode each batch before the next read: reusing one
   * buffer spares an allocation (and, on first touch, the page faults) per read.
   */
  buffer?: Buffer
}

/** What a read returns: whole batches (the first may start before the requested offset). */
export class ReadResult {
  readonly batches: RecordBatch[]
  /** The offset asked for. */
  readonly offset: number
  /** Where the next sequential read starts. Equals `offset` when nothing was returned. */
  readonly nextOffset: number

  constructor(batches: RecordBatch[], offset: number, nextOffset: number) {
    this.batches = batches
    this.offset = offset
    this.nextOffset = nextOffset
  }

  /** Decodes the records at or after `offset`. Keys and values are slices of the read buffer. */
  records(): Record[] {
    const out: Record[] = []
    for (const b of this.batches) b.decodeInto(out, this.offset)
    return out
  }
}

/** Something recovery did on open, for logs and tests. */
export interface RecoveryEvent {
  kind: 'truncated' | 'segment-deleted' | 'index-rebuilt' | 'checkpoint-reset' | 'file-removed'
  file: string
  detail: string
}

const CHECKPOINT_FILE = 'checkpoint'
const PRODUCER_SNAPSHOT_FILE = 'producer-state'
const EPOCH_FILE = 'leader-epoch-checkpoint'
const HW_FILE = 'high-watermark'
const DEFAULT_ACK_TIMEOUT_MS = 30_000
const SEGMENT_NAME = /^(\d{20})\.(log|index|timeindex)$/
const INT32_MAX = 0x7fffffff
const DEFAULT_MAX_BYTES = 1024 * 1024

/** An encoded batch waiting for `commit`; see `Partition.prepare`. */
export interface PreparedBatch {
  readonly partition: Partition
  readonly bytes: Buffer
  readonly count: number
  readonly producer: ProducerBatchId | null
  readonly acks: 1 | 'all'
  readonly ackTimeoutMs: number
}

interface SyncWaiter { offset: number, resolve: () => void, reject: (err: Error) => void }
interface CommitWaiter { offset: number, deadline: number, resolve: () => void, reject: (err: Error) => void }

/** The role of a replicated partition before the controller has named a leader. */
export const NO_LEADER_ROLE: ReplicaRole = Object.freeze({ kind: 'follower', leaderEpoch: -1, isrSize: 0, minInsyncReplicas: 1 })

export class Partition {
  readonly topic: string
  readonly id: number
  readonly dir: string
  /** What recovery did when this partition opened (empty after a clean open). */
  readonly recovery: RecoveryEvent[] = []
  #config: TopicConfig
  #segConfig: SegmentConfig
  #clock: Clock
  #segments: Segment[] = []
  #logStartOffset = 0
  #recoveryPoint = 0
  #syncedOffset = 0
  /** Bumped by truncation: a sync that started before it must not advance syncedOffset. */
  #generation = 0
  #waiters: SyncWaiter[] = []
  #syncScheduled = false
  #rollFlushQueued = false
  /** Producer-state snapshots taken at rolls, oldest first, each written once the data below it is durable. */
  #pendingSnapshots: Buffer[] = []
  /** A `producer-state` file exists (or is being written): it must be kept current, even empty. */
  #hasSnapshot = false
  #messagesSinceSync = 0
  #timer: NodeJS.Timeout | null = null
  #encoder = new BatchEncoder()
  #producers = new ProducerState()
  #appendListeners = new Set<AppendListener>()
  // One task at a time, in order: what makes group commit, roll flushes and deletes safe together.
  #queue = new PQueue({ concurrency: 1 })
  #failed: StrandError | null = null
  #closing: Promise<void> | null = null
  #role: ReplicaRole | null = null
  #highWatermark = 0
  /** acks='all' appends waiting for the high watermark, in offset order. */
  #commitWaiters: CommitWaiter[] = []
  #commitTimer: NodeJS.Timeout | null = null
  #epochs = new LeaderEpochCache()

  private constructor(dir: string, topic: string, id: number, config: TopicConfig, clock: Clock, batchLimit: number) {
    this.dir = dir
    this.topic = topic
    this.id = id
    this.#config = config
    this.#segConfig = segmentConfig(config, batchLimit)
    this.#clock = clock
  }

  /**
   * Opens the partition in `dir` (created if missing). With `clean` (the log was closed
   * cleanly) no data is read beyond each active segment's tail; otherwise every segment from
   * the recovery point on is re-validated, cut at the first bad batch, and synced.
   * `batchLimit` is the largest `maxMessageBytes` the topic ever had: the bound on batch
   * lengths that reads and recovery believe.
   */
  static async open(dir: string, topic: string, id: number, config: TopicConfig, clock: Clock, clean: boolean, batchLimit = config.maxMessageBytes, replicated = false): Promise<Partition> {
    fs.mkdirSync(dir, { recursive: true })
    const p = new Partition(dir, topic, id, config, clock, batchLimit)
    await p.#load(clean)
    if (replicated) p.#loadReplicationState()
    p.#startFlushTimer()
    return p
  }

  get logStartOffset(): number { return this.#logStartOffset }
  /** LEO: the offset the next appended record will get. */
  get logEndOffset(): number { return this.#segments[this.#segments.length - 1].nextOffset }
  /**
   * Every offset below it is committed: on every in-sync replica. Readers (consumers) see
   * only what is below it. Without replication it is the log end offset.
   */
  get highWatermark(): number { return this.#role === null ? this.logEndOffset : this.#highWatermark }
  /** The role replication gave this partition, or null when it is not replicated. */
  get role(): ReplicaRole | null { return this.#role }
  /** The newest leader epoch in this log (-1 when none): a follower's "last fetched epoch". */
  get latestEpoch(): number { return this.#epochs.latestEpoch }
  /** Every offset below this is fdatasync'ed. */
  get syncedOffset(): number { return this.#syncedOffset }
  get recoveryPoint(): number { return this.#recoveryPoint }
  /** Bytes on disk across all segments' logs. */
  get size(): number {
    let n = 0
    for (const s of this.#segments) n += s.size
    return n
  }
  get segmentCount(): number { return this.#segments.length }
  /** Bumped by every truncation: batches read before a change of it may no longer be in the log. */
  get truncations(): number { return this.#generation }
  /** The largest idempotent producer id this partition remembers, or -1. */
  get maxProducerId(): number { return this.#producers.maxProducerId() }
  get config(): TopicConfig { return this.#config }
  get isClosed(): boolean { return this.#closing !== null }

  /** Base offsets of the segments, oldest first (diagnostics and tests). */
  segmentBaseOffsets(): number[] {
    return this.#segments.map((s) => s.baseOffset)
  }

  /**
   * Replaces the config of a live partition; takes effect from the next append or check.
   * `batchLimit` is the largest batch reads and recovery believe (see `Partition.open`).
   */
  reconfigure(config: TopicConfig, batchLimit = config.maxMessageBytes): void {
    this.#config = config
    this.#segConfig = segmentConfig(config, batchLimit)
    this.#startFlushTimer()
  }

  // --- appending ------------------------------------------------------------------------

  /**
   * Appends `records` as one batch with consecutive offsets. The write to the page cache
   * happens before this returns; the promise resolves as the flush policy says. Invalid
   * records reject with INVALID_ARGUMENT, an oversized batch with RECORD_TOO_LARGE; either
   * way nothing is written.
   */
  append(records: readonly RecordInput[], options?: AppendOptions): Promise<AppendResult> {
    try {
      return this.commit(this.prepare(records, options))
    } catch (err) {
      return Promise.reject(err)
    }
  }

  /**
   * First half of an append: validates and encodes the batch without writing it. A topic
   * prepares every partition's batch before committing any, so one bad record anywhere
   * writes nothing anywhere. Valid until the next prepare on this partition.
   */
  prepare(records: readonly RecordInput[], options?: AppendOptions): PreparedBatch {
    this.#checkWritable()
    this.#checkLeader()
    let leaderEpoch = options?.leaderEpoch ?? -1
    if (!Number.isInteger(leaderEpoch) || leaderEpoch < -1 || leaderEpoch > INT32_MAX) throw invalidArgument('leaderEpoch', 'an integer in [-1, 2^31-1]', leaderEpoch)
    if (this.#role !== null) leaderEpoch = this.#role.leaderEpoch
    const acks = options?.acks ?? 1
    if (acks !== 1 && acks !== 'all') throw invalidArgument('acks', "1 or 'all'", acks)
    const ackTimeoutMs = options?.ackTimeoutMs ?? DEFAULT_ACK_TIMEOUT_MS
    if (!Number.isSafeInteger(ackTimeoutMs) || ackTimeoutMs < 0) throw invalidArgument('ackTimeoutMs', 'a safe integer >= 0', ackTimeoutMs)
    const producer = options?.producer ?? null
    if (producer !== null) checkProducer(producer)
    const bytes = this.#encoder.encode(records, {
      baseOffset: this.logEndOffset,
      now: this.#clock.now(),
      leaderEpoch,
      producerId: producer?.id,
      producerEpoch: producer?.epoch,
      baseSequence: producer?.sequence,
    })
    if (bytes.length > this.#config.maxMessageBytes) {
      throw new StrandError('RECORD_TOO_LARGE', `${this.topic}/${this.id}: batch of ${records.length} records is ${bytes.length} bytes, more than maxMessageBytes ${this.#config.maxMessageBytes}`)
    }
    return { partition: this, bytes, count: records.length, producer, acks, ackTimeoutMs }
  }

  /** Second half: assigns offsets, writes, and returns the flush policy's promise. */
  commit(prepared: PreparedBatch): Promise<AppendResult> {
    if (prepared.partition !== this) throw invalidArgument('prepared', `a batch prepared by ${this.topic}/${this.id}`, prepared)
    this.#checkWritable()
    this.#checkLeader()
    const role = this.#role
    // A leader that lost its epoch between prepare and commit must not write the old stamp.
    if (role !== null && batchLeaderEpoch(prepared.bytes, 0) !== role.leaderEpoch) throw new StrandError('FENCED_LEADER_EPOCH', `${this.topic}/${this.id}: the batch was prepared in leader epoch ${batchLeaderEpoch(prepared.bytes, 0)}, the partition is now in ${role.leaderEpoch}`)
    const replicated = prepared.acks === 'all' && role !== null
    if (replicated && role.isrSize < role.minInsyncReplicas) {
      throw new StrandError('NOT_ENOUGH_REPLICAS', `${this.topic}/${this.id}: ${role.isrSize} in-sync replicas, fewer than minInsyncReplicas ${role.minInsyncReplicas}`)
    }
    const producer = prepared.producer
    if (producer !== null) {
      const dup = this.#producers.check(`${this.topic}/${this.id}`, producer.id, producer.epoch, producer.sequence, prepared.count)
      if (dup !== null) return this.#ackDuplicate(dup.baseOffset, dup.lastOffset, replicated, prepared.ackTimeoutMs)
    }
    const baseOffset = this.logEndOffset
    const lastOffset = baseOffset + prepared.count - 1
    if (producer !== null && !this.#hasSnapshot) this.#markFirstProducer(baseOffset)
    // The base offset sits outside the checksum, so it can be set at commit.
    setBatchBaseOffset(prepared.bytes, 0, baseOffset)
    this.#maybeRoll(prepared.bytes.length, lastOffset, batchMaxTimestamp(prepared.bytes, 0))
    const active = this.#active()
    try {
      active.append(prepared.bytes)
    } catch (err) {
      if (active.isBroken) this.#fail(err)
      throw err
    }
    if (producer !== null) {
      this.#producers.update(producer.id, producer.epoch, producer.sequence, prepared.count, baseOffset, this.#clock.now())
    }
    if (this.#appendListeners.size > 0) for (const fn of this.#appendListeners) fn(this)
    const result: AppendResult = { baseOffset, lastOffset }
    const flush = this.#config.flush
    if (replicated) {
      const committed = this.#waitForCommit(lastOffset, prepared.ackTimeoutMs)
      if (flush === 'always') return Promise.all([this.#waitForSync(lastOffset), committed]).then(() => result)
      if (flush !== 'os' && flush.messages !== undefined) {
        this.#messagesSinceSync += prepared.count
        if (this.#messagesSinceSync >= flush.messages) this.#scheduleSync()
      }
      return committed.then(() => result)
    }
    if (flush === 'always') return this.#waitForSync(lastOffset).then(() => result)
    if (flush !== 'os' && flush.messages !== undefined) {
      this.#messagesSinceSync += prepared.count
      if (this.#messagesSinceSync >= flush.messages) this.#scheduleSync()
    }
    return Promise.resolve(result)
  }

  /** A retry's answer: the original offsets, once they are as durable as the policy promises. */
  #ackDuplicate(baseOffset: number, lastOffset: number, replicated: boolean, ackTimeoutMs: number): Promise<AppendResult> {
    const result: AppendResult = { baseOffset, lastOffset, duplicate: true }
    const waits: Promise<void>[] = []
    if (this.#config.flush === 'always' && lastOffset >= this.#syncedOffset) waits.push(this.#waitForSync(lastOffset))
    if (replicated && lastOffset >= this.#highWatermark) waits.push(this.#waitForCommit(lastOffset, ackTimeoutMs))
    return waits.length === 0 ? Promise.resolve(result) : Promise.all(waits).then(() => result)
  }

  /** Registers `fn` to run after every append (consumers tailing the partition). */
  addAppendListener(fn: AppendListener): void {
    this.#appendListeners.add(fn)
  }

  removeAppendListener(fn: AppendListener): void {
    this.#appendListeners.delete(fn)
  }

  #checkWritable(): void {
    if (this.#closing !== null) throw closed(`partition ${this.topic}/${this.id}`)
    if (this.#failed !== null) throw new StrandError('PARTITION_FAILED', `partition ${this.topic}/${this.id} refuses writes after an earlier error; reopen the log: ${this.#failed.message}`, { cause: this.#failed })
  }

  #checkLeader(): void {
    const role = this.#role
    if (role !== null && role.kind !== 'leader') {
      throw new StrandError('NOT_LEADER', `${this.topic}/${this.id}: this node is a follower${role.leaderEpoch < 0 ? ' with no leader known' : ` in leader epoch ${role.leaderEpoch}`}; append on the leader`)
    }
  }

  #active(): Segment {
    return this.#segments[this.#segments.length - 1]
  }

  /**
   * Rolls before a batch that would overflow the segment, its indexes or int32 relative
   * offsets, or whose timestamp is more than `segmentMs` past the segment's first batch.
   * Like Kafka, age compares record timestamps, so replayed old data does not roll per batch.
   */
  #maybeRoll(batchBytes: number, lastOffset: number, batchTimestamp: number): void {
    const s = this.#active()
    if (s.isEmpty) return
    if (s.size + batchBytes > this.#config.segmentBytes ||
      s.indexesFull ||
      batchTimestamp - s.firstTimestamp > this.#config.segmentMs ||
      lastOffset - s.baseOffset > INT32_MAX) {
      this.#roll()
    }
  }

  #roll(): void {
    const old = this.#active()
    old.seal()
    let next: Segment
    try {
      next = Segment.create(this.dir, old.nextOffset, this.#segConfig)
    } catch (err) {
      // No new segment (a full disk cannot take another inode): keep appending to the old one.
      old.unseal()
      throw err
    }
    this.#segments.push(next)
    // The producer state as of the new base offset, written once the sealed segments are
    // durable: a snapshot must never be ahead of the data it summarises.
    if (this.#producers.size > 0) {
      this.#hasSnapshot = true
      this.#pendingSnapshots.push(this.#producers.snapshot(next.baseOffset, this.#clock.now()))
    }
    this.#scheduleRollFlush()
  }

  /**
   * Flushes sealed segments and the new directory entries off the append path, then moves
   * the recovery point past them. At most one such task waits in the queue: rolls that come
   * faster than flushes (small segments, flush 'os') share it instead of piling up.
   */
  #scheduleRollFlush(): void {
    if (this.#rollFlushQueued) return
    this.#rollFlushQueued = true
    this.#background(async () => {
      this.#rollFlushQueued = false
      const sealed = this.#segments.slice(0, -1).filter((s) => s.needsSealFlush)
      for (const s of sealed) await s.flushSealed()
      await syncDirectory(this.dir)
      // Everything before the first segment still waiting for its flush is durable.
      const pending = this.#segments.find((s) => s.needsSealFlush || !s.isSealed)
      const point = pending?.baseOffset ?? this.logEndOffset
      if (point > this.#recoveryPoint) {
        this.#recoveryPoint = point
        await this.#writeCheckpoint()
      }
      // The newest snapshot the durable data covers; rolls faster than flushes leave several
      // waiting, and replacing one by the next would starve the file.
      let ready: Buffer | null = null
      while (this.#pendingSnapshots.length > 0 && readInt64BE(this.#pendingSnapshots[0], 0) <= this.#recoveryPoint) ready = this.#pendingSnapshots.shift()!
      if (ready !== null) await this.#writeProducerSnapshot(ready)
    })
  }

  /** Rolls the active segment now, if it holds anything. */
  roll(): void {
    this.#checkWritable()
    if (!this.#active().isEmpty) this.#roll()
  }

  // --- group commit ---------------------------------------------------------------------

  #waitForSync(offset: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#waiters.push({ offset, resolve, reject })
      this.#scheduleSync()
    })
  }

  /**
   * Queues one sync round unless one is already queued and not yet started. A round syncs
   * everything written before it starts, so appends that arrive while a round's fdatasync is
   * in flight share the next round: one fdatasync per round, however many appends.
   */
  #scheduleSync(): void {
    if (this.#syncScheduled) return
    this.#syncScheduled = true
    this.#background(() => this.#syncRound())
  }

  async #syncRound(): Promise<void> {
    this.#syncScheduled = false
    this.#messagesSinceSync = 0
    const target = this.logEndOffset
    const generation = this.#generation
    for (const s of this.#segments.slice()) {
      if (s.unflushedBytes > 0) await s.sync()
    }
    if (generation === this.#generation && target > this.#syncedOffset) this.#syncedOffset = target
    this.#releaseWaiters()
  }

  #releaseWaiters(): void {
    const w = this.#waiters
    let i = 0
    while (i < w.length && w[i].offset < this.#syncedOffset) w[i++].resolve()
    if (i > 0) w.splice(0, i)
    if (w.length > 0) this.#scheduleSync()
  }

  /** Rejects appends waiting for offsets at or past `offset`: truncation removed them. */
  #rejectWaitersFrom(offset: number): void {
    const cut = this.#waiters.filter((w) => w.offset >= offset)
    if (cut.length === 0) return
    this.#waiters = this.#waiters.filter((w) => w.offset < offset)
    for (const w of cut) w.reject(new StrandError('OFFSET_OUT_OF_RANGE', `${this.topic}/${this.id}: offset ${w.offset} was truncated before it was synced`))
  }

  /** Runs `task` on the partition's queue; a failure there fails the partition. */
  #enqueue(task: () => Promise<void>): Promise<void> {
    return this.#queue.add(async () => {
      if (this.#failed !== null) throw this.#failed
      try {
        await task()
      } catch (err) {
        this.#fail(err)
        throw this.#failed
      }
    })
  }

  /** Queues `task` without a caller to await it: its failure is recorded by #fail and reaches waiters. */
  #background(task: () => Promise<void>): void {
    this.#enqueue(task).catch(() => {})
  }

  #fail(err: unknown): void {
    if (this.#failed === null) {
      this.#failed = err instanceof StrandError ? err : new StrandError('IO_ERROR', `${this.topic}/${this.id}: ${(err as Error)?.message}`, { cause: err })
    }
    const waiters = this.#waiters.splice(0)
    for (const w of waiters) w.reject(this.#failed)
  }

  /** Syncs everything appended so far; resolves when it is on disk. */
  flush(): Promise<void> {
    if (this.#failed !== null) return Promise.reject(this.#failed)
    const end = this.logEndOffset
    if (end <= this.#syncedOffset) return Promise.resolve()
    return this.#waitForSync(end - 1)
  }

  #startFlushTimer(): void {
    if (this.#timer !== null) clearInterval(this.#timer)
    this.#timer = null
    const flush = this.#config.flush
    if (typeof flush === 'object' && flush.intervalMs !== undefined) {
      this.#timer = setInterval(() => {
        if (this.logEndOffset > this.#syncedOffset && this.#failed === null) this.#scheduleSync()
      }, flush.intervalMs)
      this.#timer.unref()
    }
  }

  // --- replication ----------------------------------------------------------------------

  /**
   * Gives the partition its role (lib/replication decides which). Becoming leader of a new
   * epoch records the epoch's start offset durably before the first append can carry it.
   * Leaving the leadership fails acks='all' appends still waiting with NOT_LEADER: whether
   * their batches survive is up to the next leader's log.
   */
  async setRole(role: ReplicaRole): Promise<void> {
    this.#checkWritable()
    if (role.kind === 'leader') {
      if (!Number.isInteger(role.leaderEpoch) || role.leaderEpoch < 0 || role.leaderEpoch > INT32_MAX) throw invalidArgument('role.leaderEpoch', 'an integer in [0, 2^31-1]', role.leaderEpoch)
      if (role.leaderEpoch > this.#epochs.latestEpoch) {
        // Not a leader of anything while the checkpoint is written: appends are refused.
        if (this.#role !== null && this.#role.kind === 'leader') this.#role = { ...this.#role, kind: 'follower' }
        this.#failCommitWaiters(new StrandError('NOT_LEADER', `${this.topic}/${this.id}: leadership moved to epoch ${role.leaderEpoch}`))
        this.#epochs.assign(role.leaderEpoch, this.logEndOffset)
        await this.#enqueue(() => this.#writeEpochs())
        this.#checkWritable()
      }
    } else if (this.#commitWaiters.length > 0) {
      this.#failCommitWaiters(new StrandError('NOT_LEADER', `${this.topic}/${this.id}: no longer the leader (now a follower in epoch ${role.leaderEpoch})`))
    }
    if (this.#role === null) this.#highWatermark = Math.min(this.#highWatermark, this.logEndOffset)
    this.#role = Object.freeze({ ...role })
    this.#releaseCommitWaiters()
  }

  /** Where `epoch` ends in this log (offsets-for-leader-epoch); see LeaderEpochCache.endOffsetFor. */
  endOffsetForEpoch(epoch: number): EpochEndOffset {
    return this.#epochs.endOffsetFor(epoch, this.logEndOffset)
  }

  /**
   * Moves the high watermark forward to `offset` (capped at the log end offset; never back).
   * Resolves acks='all' appends it passes and wakes readers.
   */
  advanceHighWatermark(offset: number): void {
    if (this.#role === null) return
    const hw = Math.min(offset, this.logEndOffset)
    if (hw <= this.#highWatermark) return
    this.#highWatermark = hw
    this.#releaseCommitWaiters()
    if (this.#appendListeners.size > 0) for (const fn of this.#appendListeners) fn(this)
  }

  #waitForCommit(offset: number, timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#commitWaiters.push({ offset, deadline: this.#clock.now() + timeoutMs, resolve, reject })
      // The append listeners ran before this waiter existed and may already have moved the
      // high watermark past it (a leader whose ISR is itself alone).
      this.#releaseCommitWaiters()
      this.#armCommitTimer()
    })
  }

  #releaseCommitWaiters(): void {
    const w = this.#commitWaiters
    const role = this.#role
    let i = 0
    while (i < w.length && w[i].offset < this.#highWatermark) {
      // Committed, but by fewer replicas than promised: the ISR shrank while it waited.
      if (role !== null && role.isrSize < role.minInsyncReplicas) {
        w[i++].reject(new StrandError('NOT_ENOUGH_REPLICAS_AFTER_APPEND', `${this.topic}/${this.id}: offset ${w[i - 1].offset} was committed by ${role.isrSize} in-sync replicas, fewer than minInsyncReplicas ${role.minInsyncReplicas}`))
      } else {
        w[i++].resolve()
      }
    }
    if (i > 0) w.splice(0, i)
    if (w.length === 0 && this.#commitTimer !== null) {
      clearTimeout(this.#commitTimer)
      this.#commitTimer = null
    }
  }

  /** One timer for all waiters, armed for the oldest one's deadline (they are in offset order, so nearly in deadline order). */
  #armCommitTimer(): void {
    if (this.#commitTimer !== null || this.#commitWaiters.length === 0) return
    const wait = Math.max(0, this.#commitWaiters[0].deadline - this.#clock.now())
    this.#commitTimer = setTimeout(() => {
      this.#commitTimer = null
      const now = this.#clock.now()
      const expired = this.#commitWaiters.filter((w) => w.deadline <= now)
      if (expired.length > 0) {
        this.#commitWaiters = this.#commitWaiters.filter((w) => w.deadline > now)
        for (const w of expired) w.reject(new StrandError('REQUEST_TIMED_OUT', `${this.topic}/${this.id}: offset ${w.offset} was not committed in time (high watermark ${this.#highWatermark})`))
      }
      this.#armCommitTimer()
    }, Math.min(wait, 1000) + 1)
    this.#commitTimer.unref()
  }

  #failCommitWaiters(err: StrandError): void {
    const w = this.#commitWaiters.splice(0)
    for (const x of w) x.reject(err)
    if (this.#commitTimer !== null) clearTimeout(this.#commitTimer)
    this.#commitTimer = null
  }

  /**
   * A follower's append: whole batches fetched from the leader, written with the offsets,
   * epochs and producer ids they carry. Each is checked (checksum, magic, lengths) and must
   * continue the log exactly; a bad one rejects with CORRUPT and nothing after it is written.
   * A new leader epoch is recorded durably before its first batch. Resolves as the flush
   * policy says (`'always'`: once the batches are fdatasync'ed).
   */
  async appendReplicated(records: Buffer): Promise<AppendResult | null> {
    this.#checkWritable()
    if (this.#role === null || this.#role.kind !== 'follower') throw new StrandError('NOT_LEADER', `${this.topic}/${this.id}: only a follower appends fetched batches`)
    const maxBatch = this.#segConfig.maxMessageBytes + 64
    // Check every batch first: a bad one anywhere writes nothing.
    let epochChange = -1
    let expected = this.logEndOffset
    let first = -1
    for (let pos = 0; pos < records.length;) {
      const why = checkBatch(records, pos, records.length, maxBatch)
      if (why !== null) throw corrupt(`${this.topic}/${this.id} fetched batch at byte ${pos}`, why)
      const base = batchBaseOffset(records, pos)
      if (first < 0) {
        first = base
        // A log emptied to start at the leader's log start, which fell inside this batch.
        if (base < expected && this.#active().isEmpty && this.#segments.length === 1 && batchLastOffset(records, pos) >= expected) expected = base
      }
      if (base !== expected) throw new StrandError('OFFSET_OUT_OF_RANGE', `${this.topic}/${this.id}: fetched batch starts at ${base}, the log ends at ${expected}`)
      const epoch = batchLeaderEpoch(records, pos)
      if (epoch > this.#epochs.latestEpoch && epochChange < 0) epochChange = pos
      expected = batchLastOffset(records, pos) + 1
      pos += batchSize(records, pos)
    }
    if (first < 0) return null
    if (first < this.logEndOffset) this.#restartAt(first, this.#logStartOffset)
    if (epochChange >= 0) {
      let changed = false
      for (let pos = epochChange; pos < records.length; pos += batchSize(records, pos)) {
        changed = this.#epochs.assign(batchLeaderEpoch(records, pos), batchBaseOffset(records, pos)) || changed
      }
      if (changed) await this.#enqueue(() => this.#writeEpochs())
      this.#checkWritable()
      if (this.logEndOffset !== first) throw new StrandError('OFFSET_OUT_OF_RANGE', `${this.topic}/${this.id}: the log changed while the leader epochs were written`)
    }
    let count = 0
    for (let pos = 0; pos < records.length;) {
      const size = batchSize(records, pos)
      const batch = records.subarray(pos, pos + size)
      const base = batchBaseOffset(batch, 0)
      const last = batchLastOffset(batch, 0)
      this.#maybeRoll(size, last, batchMaxTimestamp(batch, 0))
      const active = this.#active()
      try {
        active.append(batch)
      } catch (err) {
        if (active.isBroken) this.#fail(err)
        throw err
      }
      const b = new RecordBatch(batch)
      if (b.producerId >= 0) {
        if (!this.#hasSnapshot) this.#markFirstProducer(base)
        this.#producers.update(b.producerId, b.producerEpoch, b.baseSequence, b.count, base, b.maxTimestamp)
      }
      count += last - base + 1
      pos += size
    }
    if (this.#appendListeners.size > 0) for (const fn of this.#appendListeners) fn(this)
    const result: AppendResult = { baseOffset: first, lastOffset: this.logEndOffset - 1 }
    const flush = this.#config.flush
    if (flush === 'always') {
      await this.#waitForSync(result.lastOffset)
    } else if (flush !== 'os' && flush.messages !== undefined) {
      this.#messagesSinceSync += count
      if (this.#messagesSinceSync >= flush.messages) this.#scheduleSync()
    }
    return result
  }

  /**
   * Empties the log and starts it again at `offset`: a follower so far behind that the
   * leader's log start passed it. Resolves once durable.
   */
  async truncateFullyAndStartAt(offset: number): Promise<void> {
    this.#checkWritable()
    if (!Number.isSafeInteger(offset) || offset < 0) throw invalidArgument('offset', 'a safe integer >= 0', offset)
    this.#restartAt(offset, offset)
    await this.#afterCut()
  }

  /** Replaces every segment with one empty segment at `base`; the log starts at `start` ≥ `base`. */
  #restartAt(base: number, start: number): void {
    this.#generation++
    this.#rejectWaitersFrom(0)
    this.#failCommitWaiters(new StrandError('NOT_LEADER', `${this.topic}/${this.id}: the log was emptied`))
    try {
      for (const s of this.#segments.splice(0)) this.#removeSegment(s)
      this.#segments.push(Segment.create(this.dir, base, this.#segConfig))
    } catch (err) {
      this.#fail(err)
      throw this.#failed
    }
    this.#logStartOffset = Math.max(base, start)
    this.#syncedOffset = this.#recoveryPoint = base
    // Nothing below `base` is here to read, and nothing above it yet.
    this.#highWatermark = base
    this.#epochs.clear()
    this.#producers.clear()
    this.#pendingSnapshots = []
  }

  /** The high watermark and leader epochs of a replicated partition, as of its last checkpoint. */
  #loadReplicationState(): void {
    this.#role = NO_LEADER_ROLE
    const hwFile = path.join(this.dir, HW_FILE)
    const epochFile = path.join(this.dir, EPOCH_FILE)
    try {
      const hw = readFrame('STHW', hwFile)
      if (hw !== null && hw.length !== 8) throw corrupt(hwFile, `payload of ${hw.length} bytes, expected 8`)
      this.#highWatermark = hw === null ? this.#logStartOffset : Math.max(this.#logStartOffset, Math.min(readInt64BE(hw, 0), this.logEndOffset))
    } catch (err) {
      if (!(err instanceof StrandError) || err.code !== 'CORRUPT') throw err
      // Derived from the cluster: the leader sends it with every fetch. Until then, show nothing new.
      this.recovery.push({ kind: 'checkpoint-reset', file: hwFile, detail: err.message })
      this.#highWatermark = this.#logStartOffset
    }
    try {
      const payload = readFrame('STLE', epochFile)
      if (payload !== null) this.#epochs.load(payload, epochFile)
    } catch (err) {
      if (!(err instanceof StrandError) || err.code !== 'CORRUPT') throw err
      // Without it, divergence can only be found from the start: the follower asks with no epoch
      // and the leader's answer bounds it. Rebuild from the batches' own stamps.
      this.recovery.push({ kind: 'checkpoint-reset', file: epochFile, detail: err.message })
      this.#rebuildEpochs()
    }
    this.#epochs.truncateFromEnd(this.logEndOffset)
    this.#epochs.truncateFromStart(this.#logStartOffset)
  }

  /** Reads every batch header to recover the leader epochs (only when the checkpoint is damaged). */
  #rebuildEpochs(): void {
    this.#epochs.clear()
    let from = this.#logStartOffset
    while (from < this.logEndOffset) {
      const r = this.read(from, { isolation: 'log' })
      for (const b of r.batches) this.#epochs.assign(b.leaderEpoch, Math.max(b.baseOffset, this.#logStartOffset))
      if (r.nextOffset <= from) break
      from = r.nextOffset
    }
  }

  #writeEpochs(): Promise<void> {
    return writeFrame('STLE', path.join(this.dir, EPOCH_FILE), this.#epochs.encode())
  }

  /** Writes the high watermark checkpoint (replicated partitions; the replication layer calls it periodically). */
  checkpointHighWatermark(): Promise<void> {
    if (this.#role === null || this.#failed !== null || this.#closing !== null) return Promise.resolve()
    return this.#enqueue(() => this.#writeHighWatermark())
  }

  #writeHighWatermark(): Promise<void> {
    const payload = Buffer.alloc(8)
    writeInt64BE(payload, 0, Math.min(this.#highWatermark, this.logEndOffset))
    return writeFrame('STHW', path.join(this.dir, HW_FILE), payload)
  }

  // --- reading --------------------------------------------------------------------------

  /**
   * Whole batches from the one containing `offset`, up to about `maxBytes`, from one segment.
   * `offset === logEndOffset` returns nothing; below `logStartOffset` or past the end is
   * OFFSET_OUT_OF_RANGE. Synchronous: it reads the page cache (or the disk, if cold) on the
   * calling thread.
   */
  read(offset: number, options?: ReadOptions): ReadResult {
    if (this.#closing !== null) throw closed(`partition ${this.topic}/${this.id}`)
    this.#checkOffset(offset, 'offset')
    const maxBytes = options?.maxBytes ?? DEFAULT_MAX_BYTES
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 1) throw invalidArgument('maxBytes', 'a safe integer >= 1', maxBytes)
    const verify = options?.verify ?? true
    const out: RecordBatch[] = []
    const end = options?.isolation === 'log' ? this.logEndOffset : this.highWatermark
    if (offset >= end) return new ReadResult(out, offset, offset)
    for (let i = this.#segmentIndexFor(offset); i < this.#segments.length; i++) {
      if (this.#segments[i].read(offset, maxBytes, out, verify, options?.buffer) > 0) break
    }
    // Batches end at the high watermark (it moves in whole batches), so this cuts no batch.
    if (end < this.logEndOffset) while (out.length > 0 && out[out.length - 1].baseOffset >= end) out.pop()
    return new ReadResult(out, offset, out.length > 0 ? out[out.length - 1].nextOffset : offset)
  }

  /**
   * The record at `offset` alone (a point read), or null when it is not readable yet (at or
   * past the high watermark, or, with isolation 'log', the log end). Below the log start or
   * past the log end is OFFSET_OUT_OF_RANGE. Unlike `read`, it copies one record instead of
   * returning the whole batch: the first point read of a batch verifies it whole, later ones
   * read about 1 KB of it (Segment.readRecord).
   */
  readRecord(offset: number, options?: { isolation?: 'committed' | 'log' }): Record | null {
    if (this.#closing !== null) throw closed(`partition ${this.topic}/${this.id}`)
    this.#checkOffset(offset, 'offset')
    const end = options?.isolation === 'log' ? this.logEndOffset : this.highWatermark
    if (offset >= end) return null
    return this.#segments[this.#segmentIndexFor(offset)].readRecord(offset)
  }

  #checkOffset(offset: number, name: string): void {
    if (!Number.isSafeInteger(offset)) throw invalidArgument(name, 'a safe integer', offset)
    if (offset < this.#logStartOffset || offset > this.logEndOffset) {
      throw new StrandError('OFFSET_OUT_OF_RANGE', `${this.topic}/${this.id}: offset ${offset} is outside [${this.#logStartOffset}, ${this.logEndOffset}]`)
    }
  }

  /** Index of the last segment whose base offset ≤ `offset` (0 when before all). */
  #segmentIndexFor(offset: number): number {
    const s = this.#segments
    let lo = 0
    let hi = s.length - 1
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1
      if (s[mid].baseOffset <= offset) lo = mid
      else hi = mid - 1
    }
    return lo
  }

  /**
   * The earliest offset whose record timestamp is ≥ `timestamp`, or null when none is. Uses
   * each segment's largest timestamp to skip segments, then its time index, then the batches.
   */
  offsetForTimestamp(timestamp: number): number | null {
    if (this.#closing !== null) throw closed(`partition ${this.topic}/${this.id}`)
    if (!Number.isSafeInteger(timestamp)) throw invalidArgument('timestamp', 'a safe integer (ms)', timestamp)
    for (const s of this.#segments) {
      if (s.maxTimestamp < timestamp || s.nextOffset <= this.#logStartOffset) continue
      let offset = Math.max(s.timestampSearchStart(timestamp), this.#logStartOffset)
      while (offset < s.nextOffset) {
        const out: RecordBatch[] = []
        if (s.read(offset, 64 * 1024, out, true) === 0) break
        for (const b of out) {
          if (b.maxTimestamp < timestamp) continue
          for (const r of b.records(offset)) if (r.timestamp >= timestamp) return r.offset
        }
        offset = out[out.length - 1].nextOffset
      }
    }
    return null
  }

  // --- truncation, deletion, retention ---------------------------------------------------

  /**
   * Removes every record at or after `offset` (replication's truncation). Cuts at a batch
   * boundary: when `offset` falls inside a batch the whole batch goes, so the new end may be
   * below `offset`. Appends still waiting for a sync of removed records are rejected.
   * Resolves once the cut and the checkpoint are durable.
   */
  async truncateTo(offset: number): Promise<void> {
    this.#checkWritable()
    if (!Number.isSafeInteger(offset) || offset < 0) throw invalidArgument('offset', 'a safe integer >= 0', offset)
    if (offset >= this.logEndOffset) {
      // Nothing to cut, but a follower may hold an epoch that starts at its log end: it led
      // that epoch and lost it before writing. The new leader does not know that epoch, so
      // every fetch naming it would diverge again; drop it, as Kafka's truncateTo does.
      if (this.#role?.kind === 'follower' && this.#epochs.truncateFromEnd(this.logEndOffset)) await this.#enqueue(() => this.#writeEpochs())
      return
    }
    this.#generation++
    // Appends waiting on records that may go are answered before anything is touched: a
    // half-done cut must never let them resolve against records appended after it.
    this.#rejectWaitersFrom(offset)
    this.#failCommitWaiters(new StrandError('NOT_LEADER', `${this.topic}/${this.id}: truncated to ${offset} before the append was committed`))
    try {
      if (offset <= this.#segments[0].baseOffset) {
        // Remove before creating: the new segment may take the name of a removed one.
        for (const s of this.#segments.splice(0)) this.#removeSegment(s)
        this.#segments.push(Segment.create(this.dir, offset, this.#segConfig))
      } else {
        for (const s of this.#segments.splice(this.#segmentIndexFor(offset) + 1)) this.#removeSegment(s)
        this.#active().truncateTo(offset)
      }
    } catch (err) {
      // The partition is somewhere between its old end and the new one: only recovery knows.
      this.#fail(err)
      throw this.#failed
    }
    const end = this.logEndOffset
    if (this.#logStartOffset > end) this.#logStartOffset = end
    if (this.#syncedOffset > end) this.#syncedOffset = end
    if (this.#recoveryPoint > end) this.#recoveryPoint = end
    if (this.#highWatermark > end) this.#highWatermark = end
    this.#rejectWaitersFrom(end)
    this.#pendingSnapshots = []
    this.#epochs.truncateFromEnd(end)
    this.#loadProducerState(true)
    await this.#afterCut()
  }

  /** Makes a cut durable: the active segment, the directory, the checkpoints that describe it. */
  async #afterCut(): Promise<void> {
    const active = this.#active()
    const snapshot = this.#producers.snapshot(this.logEndOffset, this.#clock.now())
    await this.#enqueue(async () => {
      await active.sync()
      await syncDirectory(this.dir)
      await this.#writeCheckpoint()
      // The old snapshot may describe batches the cut removed: replace it.
      if (this.#hasSnapshot || this.#producers.size > 0) await this.#writeProducerSnapshot(snapshot)
      if (this.#role !== null) {
        await this.#writeEpochs()
        await this.#writeHighWatermark()
      }
    })
  }

  /**
   * Makes `offset` the log start offset: records below it disappear for readers at once, and
   * whole segments below it are deleted. Resolves when the new start is durable.
   */
  async deleteRecordsBefore(offset: number): Promise<void> {
    this.#checkWritable()
    if (!Number.isSafeInteger(offset)) throw invalidArgument('offset', 'a safe integer', offset)
    if (offset > this.highWatermark) throw new StrandError('OFFSET_OUT_OF_RANGE', `${this.topic}/${this.id}: cannot delete before ${offset}, past the ${this.#role === null ? 'log end offset' : 'high watermark'} ${this.highWatermark}`)
    if (offset <= this.#logStartOffset) return
    await this.#advanceLogStart(offset)
  }

  /**
   * Deletes sealed segments past `retentionMs` (by their newest record) or beyond
   * `retentionBytes` (oldest first). Never the active segment. Resolves to the number deleted.
   */
  async enforceRetention(now = this.#clock.now()): Promise<number> {
    if (this.#closing !== null || this.#failed !== null) return 0
    const { retentionMs, retentionBytes } = this.#config
    // Never past the high watermark: a replica may still need what is above it.
    let sealed = this.#segments.length - 1
    const hw = this.highWatermark
    while (sealed > 0 && this.#segments[sealed - 1].nextOffset > hw) sealed--
    let byTime = 0
    if (retentionMs >= 0) {
      while (byTime < sealed && now - this.#segments[byTime].maxTimestamp > retentionMs) byTime++
    }
    let bySize = 0
    if (retentionBytes >= 0) {
      let excess = this.size - retentionBytes
      while (bySize < sealed && excess >= this.#segments[bySize].size) excess -= this.#segments[bySize++].size
    }
    const count = Math.max(byTime, bySize)
    if (count === 0) return 0
    await this.#advanceLogStart(this.#segments[count].baseOffset)
    return count
  }

  async #advanceLogStart(offset: number): Promise<void> {
    this.#logStartOffset = Math.max(this.#logStartOffset, offset)
    const epochsChanged = this.#epochs.truncateFromStart(this.#logStartOffset)
    const doomed: Segment[] = []
    while (this.#segments.length > 1 && this.#segments[0].nextOffset <= this.#logStartOffset) doomed.push(this.#segments.shift()!)
    // Rename now so the files are out of the partition at once; unlink after the new start
    // is durable. A crash in between leaves `.deleted` files, which open() removes.
    const trash: string[] = []
    for (const s of doomed) {
      this.#closeLater(s)
      for (const f of s.files) {
        try {
          renameSync(f, f + '.deleted')
          trash.push(f + '.deleted')
        } catch (err) {
          if ((err as StrandError).cause === undefined || ((err as StrandError).cause as NodeJS.ErrnoException).code !== 'ENOENT') throw err
        }
      }
    }
    await this.#enqueue(async () => {
      await this.#writeCheckpoint()
      if (epochsChanged && this.#role !== null) await this.#writeEpochs()
      await Promise.all(trash.map((f) => fs.promises.rm(f, { force: true })))
      if (trash.length > 0) await syncDirectory(this.dir)
    })
  }

  /** Unlinks a segment's files now and closes it once queued work that may use it is done. */
  #removeSegment(s: Segment): void {
    this.#closeLater(s)
    for (const f of s.files) fs.rmSync(f, { force: true })
  }

  /**
   * Closes a segment after the tasks already queued (a roll flush or sync round may hold its
   * descriptor: closing now could make their fdatasync hit EBADF, or a reused descriptor
   * number). Runs even on a failed partition.
   */
  #closeLater(s: Segment): void {
    this.#queue.add(async () => s.close(false)).catch(() => {})
  }

  /**
   * Before the partition's first idempotent batch: a snapshot saying "no producers before
   * `offset`", so that a crash before the first roll's snapshot replays from here instead of
   * forgetting producers whose batches end up in sealed segments. Written synchronously so no
   * kill can come between it and the batch, once per partition and without an fsync (the
   * snapshots after rolls and at close are fsynced; a power loss costs only the fallback).
   */
  #markFirstProducer(offset: number): void {
    const file = path.join(this.dir, PRODUCER_SNAPSHOT_FILE)
    try {
      fs.writeFileSync(file + '.tmp', encodeFrame('STPS', this.#producers.snapshot(offset, this.#clock.now())))
      renameSync(file + '.tmp', file)
    } catch (err) {
      throw err instanceof StrandError ? err : new StrandError('IO_ERROR', `${file}: ${(err as Error).message}`, { cause: err })
    }
    this.#hasSnapshot = true
  }

  #writeProducerSnapshot(payload: Buffer): Promise<void> {
    return writeFrame('STPS', path.join(this.dir, PRODUCER_SNAPSHOT_FILE), payload)
  }

  #writeCheckpoint(): Promise<void> {
    const payload = Buffer.alloc(16)
    writeInt64BE(payload, 0, this.#logStartOffset)
    writeInt64BE(payload, 8, Math.min(this.#recoveryPoint, this.logEndOffset))
    return writeFrame('STCP', path.join(this.dir, CHECKPOINT_FILE), payload)
  }

  // --- open and close -------------------------------------------------------------------

  async #load(clean: boolean): Promise<void> {
    const bases = this.#scanDirectory()
    const checkpointFile = path.join(this.dir, CHECKPOINT_FILE)
    let checkpoint: Buffer | null = null
    try {
      checkpoint = readFrame('STCP', checkpointFile)
      if (checkpoint !== null && checkpoint.length !== 16) throw corrupt(checkpointFile, `payload of ${checkpoint.length} bytes, expected 16`)
    } catch (err) {
      if (!(err instanceof StrandError) || err.code !== 'CORRUPT') throw err
      // Both values are derivable: start from the first segment and re-validate everything.
      this.recovery.push({ kind: 'checkpoint-reset', file: checkpointFile, detail: err.message })
      checkpoint = null
      clean = false
    }
    this.#logStartOffset = checkpoint !== null ? readInt64BE(checkpoint, 0) : 0
    this.#recoveryPoint = checkpoint !== null ? readInt64BE(checkpoint, 8) : 0

    if (bases.length === 0) {
      this.#segments.push(Segment.create(this.dir, Math.max(0, this.#logStartOffset), this.#segConfig))
      await syncDirectory(this.dir)
    } else {
      for (let i = 0; i < bases.length; i++) {
        const last = i === bases.length - 1
        this.#segments.push(Segment.open(this.dir, bases[i], this.#segConfig, !last, last ? null : bases[i + 1]))
      }
      if (clean) {
        const why = this.#active().loadTail()
        if (why !== null) {
          this.recovery.push({ kind: 'index-rebuilt', file: this.#active().logPath, detail: why })
          clean = false
        }
      }
      if (!clean) await this.#recover()
    }
    const first = this.#segments[0].baseOffset
    this.#logStartOffset = Math.min(Math.max(this.#logStartOffset, first), this.logEndOffset)
    // A crash after a log-start checkpoint but before its segments were deleted: finish the job.
    if (this.#segments.length > 1 && this.#segments[0].nextOffset <= this.#logStartOffset) await this.#advanceLogStart(this.#logStartOffset)
    this.#syncedOffset = this.logEndOffset
    this.#recoveryPoint = this.logEndOffset
    this.#loadProducerState(!clean)
  }

  /**
   * Rebuilds the idempotent producers' state: the snapshot, if it is usable (not past the log
   * end, which a cut in recovery or truncation can cause), then every batch header after it.
   * Without a usable snapshot the active segment is replayed: producers seen only in older
   * segments are forgotten (their next batch is accepted at any sequence), which can let a
   * retry of theirs through but never refuses a good batch or invents a duplicate. After a
   * clean close a missing file means there were no producers (close keeps it current).
   */
  #loadProducerState(validated: boolean): void {
    const file = path.join(this.dir, PRODUCER_SNAPSHOT_FILE)
    const activeStart = Math.max(this.#logStartOffset, this.#active().baseOffset)
    let from = validated ? activeStart : this.logEndOffset
    this.#producers.clear()
    this.#hasSnapshot = fs.existsSync(file)
    try {
      const payload = readFrame('STPS', file)
      if (payload !== null) {
        const at = this.#producers.load(payload, file)
        if (at > this.logEndOffset) {
          this.#producers.clear()
          from = activeStart
        } else if (at < this.#logStartOffset) {
          // The log start moved past the snapshot: everything it describes lies below the
          // start (forgotten, as Kafka forgets such producers); the log start on is replayed.
          this.#producers.clear()
          from = this.#logStartOffset
        } else {
          from = at
        }
      }
    } catch (err) {
      if (!(err instanceof StrandError) || err.code !== 'CORRUPT') throw err
      this.recovery.push({ kind: 'checkpoint-reset', file, detail: err.message })
      this.#producers.clear()
      from = activeStart
    }
    try {
      while (from < this.logEndOffset) {
        const r = this.read(from, { isolation: 'log' })
        for (const b of r.batches) {
          if (b.producerId >= 0 && b.baseOffset >= from) this.#producers.update(b.producerId, b.producerEpoch, b.baseSequence, b.count, b.baseOffset, b.maxTimestamp)
        }
        if (r.nextOffset <= from) break
        from = r.nextOffset
      }
    } catch (err) {
      // A damaged sealed batch: reads will report it; the state stops short of it.
      if (!(err instanceof StrandError) || err.code !== 'CORRUPT') throw err
      this.recovery.push({ kind: 'checkpoint-reset', file, detail: `producer state replay stopped at ${from}: ${err.message}` })
    }
  }

  /**
   * Lists the directory: removes leftovers of interrupted work (`.tmp`, `.deleted`, indexes
   * without a log) and returns the segments' base offsets in order. Unknown files are left alone.
   */
  #scanDirectory(): number[] {
    const logs = new Set<number>()
    const indexes: string[] = []
    for (const name of fs.readdirSync(this.dir)) {
      const full = path.join(this.dir, name)
      if (name.endsWith('.deleted') || name.endsWith('.tmp')) {
        fs.rmSync(full, { force: true, recursive: true })
        this.recovery.push({ kind: 'file-removed', file: full, detail: 'leftover of interrupted work' })
        continue
      }
      const m = SEGMENT_NAME.exec(name)
      if (m === null) continue
      const base = Number(m[1])
      if (!Number.isSafeInteger(base)) continue
      if (m[2] === 'log') logs.add(base)
      else indexes.push(name)
    }
    for (const name of indexes) {
      if (!logs.has(Number(name.slice(0, 20)))) {
        const full = path.join(this.dir, name)
        fs.rmSync(full, { force: true })
        this.recovery.push({ kind: 'file-removed', file: full, detail: 'index without a log' })
      }
    }
    return [...logs].sort((a, b) => a - b)
  }

  /**
   * Unclean open: re-validates each segment from the one holding the recovery point. The
   * first damaged segment is cut at its last good batch and every later segment is deleted
   * (offsets must stay gap-free). What was recovered is then synced, so the new recovery
   * point is true.
   */
  async #recover(): Promise<void> {
    const segs = this.#segments
    let i = Math.max(0, this.#segmentIndexFor(this.#recoveryPoint))
    for (; i < segs.length; i++) {
      const s = segs[i]
      if (i > 0 && s.baseOffset !== segs[i - 1].nextOffset) {
        this.#dropFrom(i, `base offset ${s.baseOffset} does not follow ${segs[i - 1].nextOffset}`)
        break
      }
      const r = s.recover()
      if (r.truncatedBytes > 0) {
        this.recovery.push({ kind: 'truncated', file: s.logPath, detail: `${r.truncatedBytes} bytes ${r.reason}` })
        // Later segments survive only if the cut left no gap (trailing garbage after whole
        // batches); the check at the top of the loop drops them otherwise.
      }
    }
    if (this.#active().isSealed) this.#active().unseal()
    for (const s of this.#segments.slice(Math.max(0, this.#segmentIndexFor(this.#recoveryPoint)))) {
      await s.sync()
      await s.syncIndexes()
    }
    await syncDirectory(this.dir)
  }

  #dropFrom(i: number, why: string): void {
    for (const s of this.#segments.splice(i)) {
      this.recovery.push({ kind: 'segment-deleted', file: s.logPath, detail: why })
      this.#removeSegment(s)
    }
    this.#active().unseal()
  }

  /**
   * Waits for queued work, syncs every segment and index, trims the active indexes and
   * writes the checkpoint with the recovery point at the end of the log. Appends waiting for
   * a sync resolve (or reject, if the final sync fails). Idempotent.
   */
  close(): Promise<void> {
    if (this.#closing === null) this.#closing = this.#close()
    return this.#closing
  }

  async #close(): Promise<void> {
    if (this.#timer !== null) clearInterval(this.#timer)
    this.#failCommitWaiters(closed(`partition ${this.topic}/${this.id}`))
    await this.#queue.onIdle()
    if (this.#failed === null) {
      try {
        for (const s of this.#segments) s.seal()
        for (const s of this.#segments) {
          await s.sync()
          await s.syncIndexes()
        }
        this.#syncedOffset = this.logEndOffset
        this.#releaseWaiters()
        this.#recoveryPoint = this.logEndOffset
        await this.#writeCheckpoint()
        // A log that never had idempotent producers writes no snapshot; one that did keeps it
        // current, even empty, so a clean open can trust a missing file to mean "none".
        if (this.#hasSnapshot || this.#producers.size > 0) await this.#writeProducerSnapshot(this.#producers.snapshot(this.logEndOffset, this.#clock.now()))
        if (this.#role !== null) {
          await this.#writeEpochs()
          await this.#writeHighWatermark()
        }
      } catch (err) {
        this.#fail(err)
      }
    }
    for (const w of this.#waiters.splice(0)) w.reject(this.#failed ?? closed(`partition ${this.topic}/${this.id}`))
    for (const s of this.#segments) s.close(false)
    if (this.#failed !== null) throw this.#failed
  }

  /** True when the last close left everything durable; the Log writes its clean marker only then. */
  get closedCleanly(): boolean {
    return this.#closing !== null && this.#failed === null
  }
}

/**
 * Segments bound batch lengths they read by the largest `maxMessageBytes` the topic has ever
 * had, not the current one: lowering the limit must not make batches already written look
 * damaged (and be cut by recovery).
 */
function segmentConfig(c: TopicConfig, batchLimit: number): SegmentConfig {
  return { indexIntervalBytes: c.indexIntervalBytes, segmentIndexBytes: c.segmentIndexBytes, maxMessageBytes: Math.max(c.maxMessageBytes, batchLimit) }
}

function checkProducer(p: ProducerBatchId): void {
  if (p === null || typeof p !== 'object') throw invalidArgument('producer', 'an object { id, epoch, sequence }', p)
  if (!Number.isSafeInteger(p.id) || p.id < 0) throw invalidArgument('producer.id', 'a safe integer >= 0', p.id)
  if (!Number.isInteger(p.epoch) || p.epoch < 0 || p.epoch > 0x7fff) throw invalidArgument('producer.epoch', 'an integer in [0, 32767]', p.epoch)
  if (!Number.isInteger(p.sequence) || p.sequence < 0 || p.sequence > INT32_MAX) throw invalidArgument('producer.sequence', 'an integer in [0, 2^31-1]', p.sequence)
}
