/**
 * A Log's membership in a cluster (Kafka's ReplicaManager): it heartbeats to the controller,
 * applies the cluster state it answers with (creating replicated topics locally, giving each
 * partition its role), answers followers' fetches through the transport, and runs the
 * periodic work of replication (ISR checks, high-watermark checkpoints).
 *
 * Invariants: one Replica per local partition of a replicated topic, created on the first
 * cluster state that names the topic; cluster states are applied in version order, one at a
 * time; nothing here blocks an append (fetches, heartbeats and ISR changes are asynchronous).
 */
import { StrandError, invalidArgument } from '../errors.js'
import type { TopicConfigInput } from '../config.js'
import type { Partition } from '../partition.js'
import type { Topic } from '../topic.js'
import type { Controller } from './controller.js'
import type { ClusterView, FetchRequest, PartitionState } from './protocol.js'
import { Replica, type ReplicaSettings } from './replica.js'
import type { Message, NodeId, Transport } from './transport.js'

export interface ReplicationOptions {
  /** This node's id in the cluster. */
  nodeId: NodeId
  /** How it reaches the other nodes; the Log serves on it and closes it at close. */
  transport: Transport
  /** Who decides leadership: an InProcessController, or a RemoteController reaching one. */
  controller: Controller
  /** A follower that has not caught up for this long leaves the ISR (`replica.lag.time.max.ms`). @default 30000 */
  replicaLagTimeMaxMs?: number
  /** How long a leader holds a fetch with nothing to send (`replica.fetch.wait.max.ms`). @default 500 */
  fetchMaxWaitMs?: number
  /** Bytes per fetch (`replica.fetch.max.bytes`, at least one batch). @default 4194304 */
  fetchMaxBytes?: number
  /** Pause after a failed fetch (`replica.fetch.backoff.ms`). @default 100 */
  fetchBackoffMs?: number
  /** Added to a fetch's or heartbeat's own wait before the request counts as lost. @default 10000 */
  requestTimeoutMs?: number
  /** The longest the controller holds a heartbeat (so at least one per this interval). @default 1000 */
  heartbeatIntervalMs?: number
  /** How often the high watermarks are checkpointed (`replica.high.watermark.checkpoint.interval.ms`). @default 5000 */
  highWatermarkCheckpointIntervalMs?: number
}

export const REPLICATION_DEFAULTS = Object.freeze({
  replicaLagTimeMaxMs: 30_000,
  fetchMaxWaitMs: 500,
  fetchMaxBytes: 4 * 1024 * 1024,
  fetchBackoffMs: 100,
  requestTimeoutMs: 10_000,
  heartbeatIntervalMs: 1000,
  highWatermarkCheckpointIntervalMs: 5000,
})

/** What the manager needs of its Log. */
export interface ReplicaHost {
  /** The local topic, or undefined. */
  findTopic(name: string): Topic | undefined
  /** Creates the topic locally as a replicated one (its partitions start without a leader). */
  createReplicatedTopic(name: string, partitions: number, config: TopicConfigInput): Promise<Topic>
}

let incarnationSeq = 0

export class ReplicaManager {
  readonly nodeId: NodeId
  /** This process's incarnation: grows with every start, so the controller can tell a restart. */
  readonly incarnation: number
  readonly options: Readonly<Required<Omit<ReplicationOptions, 'transport' | 'controller' | 'nodeId'>>>
  #host: ReplicaHost
  #transport: Transport
  #controller: Controller
  #replicas = new Map<string, Replica>()
  #version = -1
  #closed = false
  /** Shutdown was asked for: no more heartbeats (the controller refuses them from now on). */
  #leaving = false
  #loop: Promise<void> | null = null
  #timers: NodeJS.Timeout[] = []
  #applied = new Set<() => void>()
  #settings: ReplicaSettings

  constructor(host: ReplicaHost, options: ReplicationOptions) {
    if (options === null || typeof options !== 'object') throw invalidArgument('replication', 'an object', options)
    // Below 2^16: producer ids are striped by node id (Log.allocateProducerId).
    if (!Number.isInteger(options.nodeId) || options.nodeId < 0 || options.nodeId > 0xffff) throw invalidArgument('replication.nodeId', 'an integer in [0, 65535]', options.nodeId)
    if (typeof options.transport?.request !== 'function') throw invalidArgument('replication.transport', 'a Transport', options.transport)
    if (typeof options.controller?.heartbeat !== 'function') throw invalidArgument('replication.controller', 'a Controller', options.controller)
    if (options.transport.nodeId !== options.nodeId) throw invalidArgument('replication.transport', `the transport of node ${options.nodeId}`, `node ${options.transport.nodeId}'s`)
    const o: Record<string, number> = { ...REPLICATION_DEFAULTS }
    for (const key of Object.keys(REPLICATION_DEFAULTS) as (keyof typeof REPLICATION_DEFAULTS)[]) {
      const v = options[key]
      if (v === undefined) continue
      if (!Number.isSafeInteger(v) || v < 1) throw invalidArgument(`replication.${key}`, 'an integer >= 1', v)
      o[key] = v
    }
    this.options = Object.freeze(o as typeof REPLICATION_DEFAULTS)
    this.nodeId = options.nodeId
    this.incarnation = Date.now() * 1000 + (incarnationSeq++ % 1000)
    this.#host = host
    this.#transport = options.transport
    this.#controller = options.controller
    this.#settings = { nodeId: this.nodeId, incarnation: this.incarnation, transport: this.#transport, controller: this.#controller, ...this.options }
  }

  /** Serves fetches and starts heartbeating; the cluster state arrives in the background. */
  async start(): Promise<void> {
    await this.#transport.serve((from, m) => this.#handle(from, m))
    this.#loop = this.#heartbeats()
    const isr = setInterval(() => { for (const r of this.#replicas.values()) r.checkIsr() }, Math.max(1, Math.floor(this.options.replicaLagTimeMaxMs / 2)))
    const hw = setInterval(() => { for (const r of this.#replicas.values()) r.partition.checkpointHighWatermark().catch(() => {}) }, this.options.highWatermarkCheckpointIntervalMs)
    for (const t of [isr, hw]) t.unref()
    this.#timers.push(isr, hw)
  }

  get controller(): Controller { return this.#controller }
  /** The cluster version this node has applied (-1 before the first). */
  get version(): number { return this.#version }

  /** The replication state of a local partition, or undefined if its topic is not replicated. */
  replica(topic: string, partition: number): Replica | undefined {
    return this.#replicas.get(key(topic, partition))
  }

  /**
   * Creates a replicated topic through the controller and waits until this node has applied
   * it (or `timeoutMs` passes: the topic exists in the cluster either way).
   */
  async createTopic(name: string, options: { partitions?: number, replicationFactor?: number, assignment?: NodeId[][], config?: TopicConfigInput } = {}, timeoutMs = 10_000): Promise<PartitionState[]> {
    const states = await this.#controller.createTopic({ name, partitions: options.partitions ?? 1, replicationFactor: options.replicationFactor ?? 1, assignment: options.assignment, config: options.config })
    await this.waitFor(() => this.#host.findTopic(name) !== undefined, timeoutMs)
    return states
  }

  /**
   * Resolves once `ready()` holds, checked after each cluster state this node applies and
   * every 10 ms (for conditions on logs, such as a high watermark); REQUEST_TIMED_OUT after
   * `timeoutMs`.
   */
  waitFor(ready: () => boolean, timeoutMs: number): Promise<void> {
    if (ready()) return Promise.resolve()
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (!ready()) return
        clearTimeout(timer)
        clearInterval(poll)
        this.#applied.delete(check)
        resolve()
      }
      const poll = setInterval(check, 10)
      const timer = setTimeout(() => {
        clearInterval(poll)
        this.#applied.delete(check)
        reject(new StrandError('REQUEST_TIMED_OUT', `node ${this.nodeId}: the condition did not hold within ${timeoutMs} ms`))
      }, timeoutMs)
      this.#applied.add(check)
    })
  }

  async #handle(_from: NodeId, m: Message): Promise<Message> {
    if (this.#closed) throw new StrandError('LOG_CLOSED', `node ${this.nodeId} is closing`)
    if (m.type === 'fetch') {
      const r = m as unknown as FetchRequest
      const replica = this.#replicas.get(key(r.topic, r.partition))
      if (replica === undefined) throw new StrandError('NOT_LEADER', `node ${this.nodeId} has no replica of ${r.topic}/${r.partition}`)
      return await replica.handleFetch(r) as unknown as Message
    }
    throw new StrandError('INVALID_ARGUMENT', `node ${this.nodeId} does not answer ${JSON.stringify(m.type)}`)
  }

  async #heartbeats(): Promise<void> {
    let backoff = this.options.fetchBackoffMs
    while (!this.#closed && !this.#leaving) {
      let view: ClusterView
      try {
        view = await this.#controller.heartbeat({ nodeId: this.nodeId, incarnation: this.incarnation, knownVersion: this.#version, maxWaitMs: this.options.heartbeatIntervalMs })
        backoff = this.options.fetchBackoffMs
      } catch {
        if (this.#closed) return
        await new Promise((resolve) => setTimeout(resolve, backoff))
        backoff = Math.min(backoff * 2, this.options.heartbeatIntervalMs)
        continue
      }
      if (this.#closed) return
      if (view.version > this.#version) {
        await this.#apply(view).catch(() => {})
        this.#version = view.version
        for (const check of [...this.#applied]) check()
      }
    }
  }

  async #apply(view: ClusterView): Promise<void> {
    const work: Promise<void>[] = []
    for (const t of view.topics) {
      let topic = this.#host.findTopic(t.name)
      if (topic === undefined) {
        try {
          topic = await this.#host.createReplicatedTopic(t.name, t.partitions.length, t.config)
        } catch {
          continue
        }
      }
      if (this.#closed) return
      for (const state of t.partitions) {
        let partition: Partition
        try {
          partition = topic.partition(state.partition)
        } catch {
          continue
        }
        if (partition.role === null) continue
        let replica = this.#replicas.get(key(t.name, state.partition))
        if (replica === undefined || replica.partition !== partition) {
          replica = new Replica(partition, this.#settings)
          this.#replicas.set(key(t.name, state.partition), replica)
        }
        work.push(replica.apply(state).catch(() => {}))
      }
    }
    await Promise.all(work)
  }

  /**
   * Leaves the cluster: tells the controller (so leadership moves now, best effort), stops
   * fetching and answering, checkpoints high watermarks, and closes the transport.
   */
  async close(): Promise<void> {
    if (this.#closed) return
    for (const t of this.#timers) clearInterval(t)
    this.#leaving = true
    const shutdown = this.#controller.shutdown(this.nodeId, this.incarnation).catch(() => {})
    await Promise.race([shutdown, new Promise((resolve) => setTimeout(resolve, 1000).unref())])
    this.#closed = true
    await Promise.all([...this.#replicas.values()].map((r) => r.stop()))
    await this.#transport.close()
    await this.#loop?.catch(() => {})
  }
}

function key(topic: string, partition: number): string {
  return `${topic}\0${partition}`
}
