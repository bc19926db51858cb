/**
 * A Log is one data directory: its topics, their partitions, the directory lock and the
 * clean-shutdown marker.
 *
 * Invariants:
 * - At most one open Log per directory, across processes and within one: `open` takes an
 *   flock on `<dir>/.lock` and fails with LOCKED otherwise.
 * - Topic creation and deletion are atomic on disk: a topic is staged in `tmp/` and renamed
 *   into `topics/`, and removed by renaming it into `trash/`; `open` empties both.
 * - `clean-shutdown` exists only between a close that made everything durable and the next
 *   open, which removes it (durably) before anything can be written.
 * - Retention runs on an unref'd timer every `retentionCheckIntervalMs` and on demand.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { randomBytes } from 'node:crypto'
import { StrandError, closed, describe, invalidArgument } from './errors.js'
import { MAX_PARTITIONS, type TopicConfig, type TopicConfigInput, normaliseTopicConfig, resolveTopicConfig } from './config.js'
import { type Clock, Partition, systemClock } from './partition.js'
import { Topic, validateTopicName } from './topic.js'
import { DirectoryLock } from './io/lock.js'
import { readFrame, rename, syncDirectory, writeFrame } from './io/files.js'
import type { Partitioner } from './partitioner.js'
import { readInt64BE, writeInt64BE } from './codec/int64.js'
import { Producer, type ProducerOptions } from './client/producer.js'
import { Consumer, type ConsumerOptions } from './client/consumer.js'
import { Admin } from './client/admin.js'
import { GroupCoordinator } from './group/coordinator.js'
import { OFFSETS_TOPIC, OffsetStore } from './group/offset-store.js'
import { ReplicaManager, type ReplicationOptions } from './replication/replica-manager.js'

export interface LogOptions {
  /** Config for topics that do not override it. @default TOPIC_DEFAULTS */
  defaults?: TopicConfigInput
  /** How often retention runs (`log.retention.check.interval.ms`); 0 disables the timer. @default 300000 */
  retentionCheckIntervalMs?: number
  /** Source of "now" for default timestamps, rolls and retention; tests inject one. @default Date.now */
  clock?: Clock
  /** Makes the partitioner of each topic; the default is Kafka's (murmur2, sticky null keys). */
  partitioner?: (topic: string) => Partitioner
  /**
   * Joins a cluster (docs/replication.md): topics created through the controller are
   * replicated, with leaders, followers and a high watermark. Without it the log is alone
   * and every topic is local.
   */
  replication?: ReplicationOptions
}

export interface CreateTopicOptions {
  /** @default 1 */
  partitions?: number
  /** Overrides of the log's defaults for this topic. */
  config?: TopicConfigInput
}

const CLEAN_SHUTDOWN = 'clean-shutdown'
const META_FILE = 'topic.meta'
const PRODUCER_IDS = 'producer-ids'
/**
 * Producer ids are reserved durably in blocks: one file write per this many producers, and
 * an id is never handed out twice, even across crashes (a crash skips the rest of a block).
 */
const PRODUCER_ID_BLOCK = 1000
/** In a cluster a producer id is `n · stride + nodeId`; node ids stay below it. */
const PRODUCER_ID_STRIDE = 65_536
/**
 * The offsets topic: durable commits (group commit makes them cheap), never deleted by
 * retention (an idle group keeps its offsets), small segments so compaction frees space.
 */
const OFFSETS_TOPIC_CONFIG = Object.freeze({ flush: 'always' as const, retentionMs: -1, retentionBytes: -1, segmentBytes: 8 * 1024 * 1024, segmentIndexBytes: 64 * 1024 })

/** What the Log closes before its partitions: producers flush, consumers commit and leave. */
interface Client { close(): Promise<void> }

interface TopicMeta {
  name: string
  partitions: number
  /** Overrides only. */
  config: Partial<TopicConfig>
  createdAt: number
  /** The largest `maxMessageBytes` the topic has had: what reads and recovery believe. */
  maxBatchBytes?: number
  /** Created through a cluster's controller: its partitions follow the controller's leaders. */
  replicated?: boolean
}

export class Log {
  readonly dir: string
  /** Whether the previous close was clean (no recovery ran). */
  readonly openedCleanly: boolean
  #lock: DirectoryLock
  #defaults: Partial<TopicConfig>
  #clock: Clock
  #partitioner: ((topic: string) => Partitioner) | undefined
  #topics = new Map<string, { topic: Topic, meta: TopicMeta }>()
  #pending = new Set<string>()
  #timer: NodeJS.Timeout | null = null
  #closing: Promise<void> | null = null
  #clients = new Set<Client>()
  #coordinator: GroupCoordinator | null = null
  #coordinatorLoading: Promise<GroupCoordinator> | null = null
  #nextProducerId = 0
  #producerIdLimit = 0
  #reserving: Promise<void> | null = null
  #cluster: ReplicaManager | null = null

  private constructor(dir: string, lock: DirectoryLock, clean: boolean, defaults: Partial<TopicConfig>, clock: Clock, partitioner: LogOptions['partitioner']) {
    this.dir = dir
    this.#lock = lock
    this.openedCleanly = clean
    this.#defaults = defaults
    this.#clock = clock
    this.#partitioner = partitioner
  }

  /**
   * Opens (creating if needed) the log in `dir`. Recovers every partition if the last close
   * was not clean. Fails with LOCKED when another open Log holds the directory.
   */
  static async open(dir: string, options: LogOptions = {}): Promise<Log> {
    if (typeof dir !== 'string' || dir.length === 0) throw invalidArgument('dir', 'a non-empty path', dir)
    if (options === null || typeof options !== 'object') throw invalidArgument('options', 'an object', options)
    if (os.endianness() !== 'LE') throw new StrandError('INVALID_ARGUMENT', 'strand index files are little-endian; this host is big-endian')
    const defaults = normaliseTopicConfig(options.defaults, 'defaults')
    const interval = options.retentionCheckIntervalMs ?? 300_000
    if (!Number.isInteger(interval) || interval < 0) throw invalidArgument('retentionCheckIntervalMs', 'an integer >= 0', interval)
    const clock = options.clock ?? systemClock
    if (typeof clock?.now !== 'function') throw invalidArgument('clock', 'an object with now()', clock)

    dir = path.resolve(dir)
    const existing = fs.statSync(dir, { throwIfNoEntry: false })
    if (existing !== undefined && !existing.isDirectory()) throw invalidArgument('dir', 'a directory', dir)
    fs.mkdirSync(dir, { recursive: true })
    const lock = DirectoryLock.acquire(dir)
    let log: Log | undefined
    try {
      const marker = path.join(dir, CLEAN_SHUTDOWN)
      const clean = fs.existsSync(marker)
      log = new Log(dir, lock, clean, defaults, clock, options.partitioner)
      for (const sub of ['tmp', 'trash']) {
        fs.rmSync(path.join(dir, sub), { recursive: true, force: true })
        fs.mkdirSync(path.join(dir, sub))
      }
      fs.mkdirSync(path.join(dir, 'topics'), { recursive: true })
      await log.#loadTopics(clean)
      if (clean) {
        // Everything written from now on is unclean until the next close says otherwise.
        fs.rmSync(marker)
        await syncDirectory(dir)
      }
      if (options.replication !== undefined) {
        const opened = log
        log.#cluster = new ReplicaManager({
          findTopic: (name) => opened.#topics.get(name)?.topic,
          createReplicatedTopic: (name, partitions, config) => opened.#createTopic(name, partitions, normaliseTopicConfig(config), true),
        }, options.replication)
        await log.#cluster.start()
      }
      if (interval > 0) {
        const opened = log
        log.#timer = setInterval(() => { opened.enforceRetention().catch(() => {}) }, interval)
        log.#timer.unref()
      }
      return log
    } catch (err) {
      // Close what did open (files, mappings) without marking the directory clean.
      const opened = log === undefined ? [] : [...log.#topics.values()].flatMap((e) => e.topic.partitions)
      if (log !== undefined && log.#cluster !== null) await log.#cluster.close().catch(() => {})
      await Promise.allSettled(opened.map((p) => p.close()))
      lock.release()
      throw err
    }
  }

  async #loadTopics(clean: boolean): Promise<void> {
    const topicsDir = path.join(this.dir, 'topics')
    for (const name of fs.readdirSync(topicsDir).sort()) {
      const tdir = path.join(topicsDir, name)
      if (!fs.statSync(tdir).isDirectory()) continue
      const metaFile = path.join(tdir, META_FILE)
      const payload = readFrame('STTM', metaFile)
      if (payload === null) {
        // A topic is renamed into topics/ with its metadata, so partition data without it
        // means the file was lost; a directory without any is not ours and is left alone.
        if (holdsPartitionData(tdir)) throw new StrandError('CORRUPT', `${metaFile}: missing; ${tdir} holds partition data that cannot be opened without its partition count`)
        continue
      }
      let meta: TopicMeta
      try {
        meta = JSON.parse(payload.toString('utf8'))
      } catch (err) {
        throw new StrandError('CORRUPT', `${metaFile}: not JSON (${(err as Error).message})`)
      }
      const limitOk = meta.maxBatchBytes === undefined || (Number.isInteger(meta.maxBatchBytes) && meta.maxBatchBytes >= 128 && meta.maxBatchBytes <= 0x3fffffff)
      if (meta.name !== name || !Number.isInteger(meta.partitions) || meta.partitions < 1 || meta.partitions > MAX_PARTITIONS || !limitOk) {
        throw new StrandError('CORRUPT', `${metaFile}: metadata ${JSON.stringify(meta).slice(0, 200)} does not fit directory ${name}`)
      }
      const config = resolveTopicConfig(this.#defaults, normaliseTopicConfig(meta.config, `${metaFile} config`))
      if (!(typeof meta.maxBatchBytes === 'number' && meta.maxBatchBytes >= config.maxMessageBytes)) {
        // A larger default than before: remember it, so a later, smaller one cannot cut batches.
        meta.maxBatchBytes = Math.max(config.maxMessageBytes, typeof meta.maxBatchBytes === 'number' ? meta.maxBatchBytes : 0)
        await writeFrame('STTM', metaFile, Buffer.from(JSON.stringify(meta)))
      }
      await this.#openTopic(meta, config, clean)
    }
  }

  async #openTopic(meta: TopicMeta, config: TopicConfig, clean: boolean): Promise<Topic> {
    const partitions: Partition[] = []
    try {
      for (let i = 0; i < meta.partitions; i++) {
        partitions.push(await Partition.open(path.join(this.dir, 'topics', meta.name, String(i)), meta.name, i, config, this.#clock, clean, meta.maxBatchBytes, meta.replicated === true))
      }
    } catch (err) {
      await Promise.allSettled(partitions.map((p) => p.close()))
      throw err
    }
    const topic = new Topic(meta.name, partitions, config, this.#partitioner?.(meta.name))
    this.#topics.set(meta.name, { topic, meta })
    return topic
  }

  #checkOpen(): void {
    if (this.#closing !== null) throw closed(`log ${this.dir}`)
  }

  /** Creates a topic durably; TOPIC_EXISTS if it exists. */
  async createTopic(name: string, options: CreateTopicOptions = {}): Promise<Topic> {
    this.#checkOpen()
    validateTopicName(name)
    if (options === null || typeof options !== 'object') throw invalidArgument('options', 'an object', options)
    const partitions = options.partitions ?? 1
    if (!Number.isInteger(partitions) || partitions < 1 || partitions > MAX_PARTITIONS) throw invalidArgument('partitions', `an integer in [1, ${MAX_PARTITIONS}]`, partitions)
    return this.#createTopic(name, partitions, normaliseTopicConfig(options.config), false)
  }

  async #createTopic(name: string, partitions: number, overrides: Partial<TopicConfig>, replicated: boolean): Promise<Topic> {
    this.#checkOpen()
    const config = resolveTopicConfig(this.#defaults, overrides)
    if (this.#topics.has(name) || this.#pending.has(name)) throw new StrandError('TOPIC_EXISTS', `topic ${name} already exists in ${this.dir}`)
    this.#pending.add(name)
    try {
      const meta: TopicMeta = { name, partitions, config: overrides, createdAt: this.#clock.now(), maxBatchBytes: config.maxMessageBytes }
      if (replicated) meta.replicated = true
      const stage = path.join(this.dir, 'tmp', randomBytes(8).toString('hex'))
      fs.mkdirSync(stage)
      for (let i = 0; i < partitions; i++) fs.mkdirSync(path.join(stage, String(i)))
      await writeFrame('STTM', path.join(stage, META_FILE), Buffer.from(JSON.stringify(meta)))
      await syncDirectory(stage)
      const topicsDir = path.join(this.dir, 'topics')
      const final = path.join(topicsDir, name)
      await rename(stage, final)
      try {
        await syncDirectory(topicsDir)
        await syncDirectory(path.join(this.dir, 'tmp'))
        const topic = await this.#openTopic(meta, config, true)
        this.#coordinator?.topicsChanged()
        return topic
      } catch (err) {
        // Take the half-made topic out of topics/ so that a retry can succeed.
        await rename(final, path.join(this.dir, 'trash', randomBytes(8).toString('hex'))).catch(() => {})
        throw err
      }
    } finally {
      this.#pending.delete(name)
    }
  }

  /** Closes and removes a topic and all its files; UNKNOWN_TOPIC if it does not exist. */
  async deleteTopic(name: string): Promise<void> {
    this.#checkOpen()
    validateTopicName(name)
    const entry = this.#topics.get(name)
    if (entry === undefined || this.#pending.has(name)) throw new StrandError('UNKNOWN_TOPIC', `topic ${name} does not exist in ${this.dir}`)
    if (name === OFFSETS_TOPIC) throw invalidArgument('name', `a topic other than the internal ${OFFSETS_TOPIC}, which holds every group's committed offsets`, name)
    // The controller would hand it back empty at its next change, and as its leader this node
    // would have every follower truncate to nothing. Topics are not deleted through it yet.
    if (entry.meta.replicated === true) throw invalidArgument('name', 'a topic that is not replicated (the controller does not delete topics)', name)
    this.#pending.add(name)
    try {
      this.#topics.delete(name)
      await Promise.allSettled(entry.topic.partitions.map((p) => p.close()))
      const trash = path.join(this.dir, 'trash', `${randomBytes(8).toString('hex')}`)
      await rename(path.join(this.dir, 'topics', name), trash)
      await syncDirectory(path.join(this.dir, 'topics'))
      await fs.promises.rm(trash, { recursive: true, force: true })
      this.#coordinator?.topicsChanged()
    } finally {
      this.#pending.delete(name)
    }
  }

  /** Names of the topics, sorted. */
  topics(): string[] {
    return [...this.#topics.keys()].sort()
  }

  hasTopic(name: string): boolean {
    return this.#topics.has(name)
  }

  topic(name: string): Topic {
    this.#checkOpen()
    const entry = this.#topics.get(name)
    if (entry === undefined) {
      validateTopicName(name)
      throw new StrandError('UNKNOWN_TOPIC', `topic ${name} does not exist in ${this.dir}`)
    }
    return entry.topic
  }

  /** This log's membership in a cluster, or null when it was opened without `replication`. */
  get cluster(): ReplicaManager | null {
    return this.#cluster
  }

  /** Changes a topic's overrides on the live log (merged into the existing ones) and persists them. */
  async alterTopicConfig(name: string, config: TopicConfigInput): Promise<TopicConfig> {
    const topic = this.topic(name)
    const entry = this.#topics.get(name)!
    const overrides = { ...entry.meta.config, ...normaliseTopicConfig(config) }
    const resolved = resolveTopicConfig(this.#defaults, overrides)
    const maxBatchBytes = Math.max(entry.meta.maxBatchBytes ?? 0, topic.config.maxMessageBytes, resolved.maxMessageBytes)
    const meta = { ...entry.meta, config: overrides, maxBatchBytes }
    await writeFrame('STTM', path.join(this.dir, 'topics', name, META_FILE), Buffer.from(JSON.stringify(meta)))
    entry.meta = meta
    topic.reconfigure(resolved, maxBatchBytes)
    return resolved
  }

  // --- clients ----------------------------------------------------------------------------

  /** A producer writing to this log (see docs/producer.md). Closed by `close` if still open. */
  producer(options?: ProducerOptions): Producer {
    this.#checkOpen()
    return this.#track(new Producer(this, options))
  }

  /** A consumer reading this log, in a group or not (see docs/consumer.md). Closed by `close` if still open. */
  consumer(options?: ConsumerOptions): Consumer {
    this.#checkOpen()
    return this.#track(new Consumer(this, options))
  }

  /** Topic, offset and group administration (see docs/admin.md). */
  admin(): Admin {
    this.#checkOpen()
    return new Admin(this)
  }

  #track<T extends Client>(client: T): T {
    this.#clients.add(client)
    return client
  }

  /** @internal A client closed itself. */
  forgetClient(client: Client): void {
    this.#clients.delete(client)
  }

  /**
   * @internal The group coordinator, loading the offsets topic (and creating it, the first
   * time a group is used).
   */
  groupCoordinator(): Promise<GroupCoordinator> {
    this.#checkOpen()
    if (this.#coordinatorLoading === null) {
      this.#coordinatorLoading = (async () => {
        const topic = this.#topics.get(OFFSETS_TOPIC)?.topic ?? await this.createTopic(OFFSETS_TOPIC, { partitions: 1, config: OFFSETS_TOPIC_CONFIG })
        const catalog = { topics: () => this.topics().filter((t) => t !== OFFSETS_TOPIC), partitionCount: (t: string) => this.#topics.get(t)?.topic.partitionCount ?? 0 }
        this.#coordinator = new GroupCoordinator(OffsetStore.load(topic.partition(0)), catalog, this.#clock)
        return this.#coordinator
      })()
      this.#coordinatorLoading.catch(() => { this.#coordinatorLoading = null })
    }
    return this.#coordinatorLoading
  }

  /** @internal The coordinator if it is loaded, else null. */
  loadedGroupCoordinator(): GroupCoordinator | null {
    return this.#coordinator
  }

  /** @internal A producer id never handed out before in this directory. */
  async allocateProducerId(): Promise<number> {
    this.#checkOpen()
    while (this.#nextProducerId >= this.#producerIdLimit) {
      if (this.#reserving === null) this.#reserving = this.#reserveProducerIds().finally(() => { this.#reserving = null })
      await this.#reserving
    }
    const n = this.#nextProducerId++
    // In a cluster, ids are striped by node: two nodes never hand out the same id, so a
    // partition whose leadership moves cannot take one node's producer for another's.
    return this.#cluster === null ? n : n * PRODUCER_ID_STRIDE + this.#cluster.nodeId
  }

  /** Moves the durable high-water mark of producer ids one block up, then hands out the block. */
  async #reserveProducerIds(): Promise<void> {
    const file = path.join(this.dir, PRODUCER_IDS)
    if (this.#producerIdLimit === 0) {
      const payload = readFrame('STPI', file)
      if (payload !== null && payload.length !== 8) throw new StrandError('CORRUPT', `${file}: payload of ${payload.length} bytes, expected 8`)
      // Also past any id a partition remembers: a lost or stale file must not hand one out
      // again (the partition would take the new producer for the old one).
      let seen = -1
      for (const { topic } of this.#topics.values()) for (const p of topic.partitions) seen = Math.max(seen, p.maxProducerId)
      const next = this.#cluster === null ? seen + 1 : Math.floor(seen / PRODUCER_ID_STRIDE) + 1
      this.#nextProducerId = this.#producerIdLimit = Math.max(payload === null ? 0 : readInt64BE(payload, 0), next)
    }
    const limit = this.#producerIdLimit + PRODUCER_ID_BLOCK
    const payload = Buffer.alloc(8)
    writeInt64BE(payload, 0, limit)
    await writeFrame('STPI', file, payload)
    this.#nextProducerId = this.#producerIdLimit
    this.#producerIdLimit = limit
  }

  /** Runs retention on every partition now; resolves to the number of segments deleted. */
  async enforceRetention(): Promise<number> {
    if (this.#closing !== null) return 0
    const now = this.#clock.now()
    let deleted = 0
    for (const { topic } of this.#topics.values()) {
      for (const p of topic.partitions) deleted += await p.enforceRetention(now)
    }
    return deleted
  }

  /**
   * Closes every partition (flushing everything), writes the clean-shutdown marker if all
   * closed cleanly, and releases the lock. Idempotent; appends after it fail with LOG_CLOSED.
   */
  close(): Promise<void> {
    if (this.#closing === null) this.#closing = this.#close()
    return this.#closing
  }

  async #close(): Promise<void> {
    if (this.#timer !== null) clearInterval(this.#timer)
    try {
      // Clients first: producers deliver what they buffered, consumers commit and leave.
      // Without clients nothing is awaited here, so partitions refuse appends from the moment
      // close() is called; with clients, appends keep landing until they are done.
      let clientResults: PromiseSettledResult<void>[] = []
      if (this.#clients.size > 0) {
        clientResults = await Promise.allSettled([...this.#clients].map((c) => c.close()))
        this.#clients.clear()
      }
      if (this.#coordinator !== null) {
        await this.#coordinator.offsets.idle()
        this.#coordinator.close()
      }
      // After the clients (a producer's acks='all' sends need followers to fetch), before the
      // partitions: no fetch may read a closing partition.
      // (Only awaited when there is one: see above.)
      if (this.#cluster !== null) await this.#cluster.close()
      const all = [...this.#topics.values()].flatMap((e) => e.topic.partitions)
      const results = await Promise.allSettled(all.map((p) => p.close()))
      const failed = results.find((r) => r.status === 'rejected') as PromiseRejectedResult | undefined
      if (failed !== undefined) throw failed.reason
      const marker = path.join(this.dir, CLEAN_SHUTDOWN)
      fs.writeFileSync(marker, '')
      await syncDirectory(this.dir)
      // The log closed cleanly; a producer's failed batches are still the caller's to hear of.
      const clientFailed = clientResults.find((r) => r.status === 'rejected') as PromiseRejectedResult | undefined
      if (clientFailed !== undefined) throw clientFailed.reason
    } finally {
      this.#lock.release()
    }
  }

  toString(): string {
    return `Log(${describe(this.dir)}, ${this.#topics.size} topics)`
  }
}

/** Whether `dir` has a numbered subdirectory holding a checkpoint or a segment. */
function holdsPartitionData(dir: string): boolean {
  for (const name of fs.readdirSync(dir)) {
    if (!/^\d+$/.test(name)) continue
    const sub = path.join(dir, name)
    if (!fs.statSync(sub).isDirectory()) continue
    if (fs.readdirSync(sub).some((f) => f === 'checkpoint' || /^\d{20}\.log$/.test(f))) return true
  }
  return false
}
