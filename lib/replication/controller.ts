/**
 * Who leads is decided here, outside the partitions: the `Controller` interface, the
 * in-process controller, and the two adapters that put any controller behind a transport.
 *
 * The model is KRaft's, reduced to one decision maker: nodes heartbeat to the controller,
 * which answers with the cluster's state whenever it changes (a long poll, so a new leader
 * hears of its election at once); a node whose heartbeats stop for `sessionTimeoutMs` is
 * fenced: it leaves every ISR, and each partition it led gets a new leader from the rest of
 * its ISR. Leaders ask the controller to change their ISR and apply a change only once the
 * controller accepted it, so an elected leader always comes from replicas the old leader
 * was waiting for. A controller backed by a coordination service implements the same
 * interface.
 */
import { StrandError, invalidArgument } from '../errors.js'
import { MAX_PARTITIONS, normaliseTopicConfig } from '../config.js'
import { validateTopicName } from '../topic.js'
import type { AlterIsrRequest, ClusterView, CreateTopicRequest, HeartbeatRequest, PartitionState, TopicState } from './protocol.js'
import { NO_NODE } from './protocol.js'
import type { Message, NodeId, Transport } from './transport.js'

export interface Controller {
  /**
   * Registers the node or keeps it alive, and answers with the cluster once its version
   * passes `knownVersion` (or after at most `maxWaitMs` without change).
   */
  heartbeat(request: HeartbeatRequest): Promise<ClusterView>
  /** A leader's ISR change; resolves with the partition's new state, or STALE_STATE. */
  alterIsr(request: AlterIsrRequest): Promise<PartitionState>
  /** Creates a replicated topic; TOPIC_EXISTS if it exists. Resolves with its partitions' states. */
  createTopic(request: CreateTopicRequest): Promise<PartitionState[]>
  /** A node leaving on purpose: leadership moves off it now instead of after its session times out. */
  shutdown(nodeId: NodeId, incarnation: number): Promise<void>
  /** Makes each partition's first replica its leader again where it is alive and in sync. Resolves with how many moved. */
  electPreferredLeaders(): Promise<number>
  /** The whole cluster as the controller sees it now. */
  describe(): Promise<ClusterView>
}

export interface ControllerOptions {
  /** A node is fenced when no heartbeat arrived for this long (KRaft's broker.session.timeout.ms). @default 9000 */
  sessionTimeoutMs?: number
  /**
   * Elect a replica outside the ISR when no in-sync one is alive (unclean.leader.election):
   * the partition comes back, and loses the records only the dead ones had. @default false
   */
  uncleanLeaderElection?: boolean
}

export const CONTROLLER_DEFAULTS = Object.freeze({ sessionTimeoutMs: 9000, uncleanLeaderElection: false })

interface NodeEntry {
  incarnation: number
  lastSeen: number
  fenced: boolean
  /** This incarnation said it is leaving: a heartbeat of its still in flight must not bring it back. */
  left?: boolean
}

/**
 * The controller as an object in one process. Its state lives in memory: it is the cluster's
 * single decision maker for as long as it runs (tests, one process hosting several logs, or
 * a process of its own serving nodes over TCP through `serveController`).
 *
 * Invariants: `leaderEpoch` and `partitionEpoch` only grow; a leader is always in its ISR;
 * the ISR is never empty (a partition whose last in-sync replica dies keeps it in the ISR and
 * goes offline, leader -1, until it returns — unless unclean election is on); only a live,
 * unfenced node joins an ISR or becomes leader.
 */
export class InProcessController implements Controller {
  readonly options: Readonly<Required<ControllerOptions>>
  #nodes = new Map<NodeId, NodeEntry>()
  #topics = new Map<string, TopicState>()
  #version = 0
  #watchers = new Set<() => void>()
  #timer: NodeJS.Timeout
  #closed = false
  #nextAssignment = 0

  constructor(options: ControllerOptions = {}) {
    const o = { ...CONTROLLER_DEFAULTS, ...stripUndefined(options) }
    if (!Number.isSafeInteger(o.sessionTimeoutMs) || o.sessionTimeoutMs < 10) throw invalidArgument('sessionTimeoutMs', 'an integer >= 10', o.sessionTimeoutMs)
    if (typeof o.uncleanLeaderElection !== 'boolean') throw invalidArgument('uncleanLeaderElection', 'a boolean', o.uncleanLeaderElection)
    this.options = Object.freeze(o)
    this.#timer = setInterval(() => this.#expireSessions(), Math.max(5, Math.min(1000, o.sessionTimeoutMs / 4)))
    this.#timer.unref()
  }

  get version(): number { return this.#version }

  async heartbeat(r: HeartbeatRequest): Promise<ClusterView> {
    this.#checkOpen()
    checkNode(r.nodeId)
    if (!Number.isSafeInteger(r.incarnation)) throw invalidArgument('incarnation', 'a safe integer', r.incarnation)
    const now = Date.now()
    const node = this.#nodes.get(r.nodeId)
    if (node !== undefined && r.incarnation < node.incarnation) {
      throw new StrandError('STALE_STATE', `node ${r.nodeId}: incarnation ${r.incarnation} is older than ${node.incarnation}; that process was replaced`)
    }
    if (node !== undefined && r.incarnation === node.incarnation && node.left === true) {
      throw new StrandError('STALE_STATE', `node ${r.nodeId}: incarnation ${r.incarnation} has shut down`)
    }
    if (node === undefined || r.incarnation > node.incarnation) {
      // A restart: whatever the old process held in memory (its ISR places) is gone.
      if (node !== undefined && !node.fenced) this.#fence(r.nodeId)
      this.#nodes.set(r.nodeId, { incarnation: r.incarnation, lastSeen: now, fenced: false })
      this.#nodeUp(r.nodeId)
    } else {
      node.lastSeen = now
      if (node.fenced) {
        node.fenced = false
        this.#nodeUp(r.nodeId)
      }
    }
    if (this.#version <= r.knownVersion) {
      const wait = Math.max(0, Math.min(r.maxWaitMs, this.options.sessionTimeoutMs / 3))
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(t)
          this.#watchers.delete(done)
          resolve()
        }
        const t = setTimeout(done, wait)
        this.#watchers.add(done)
      })
    }
    return this.#view()
  }

  async alterIsr(r: AlterIsrRequest): Promise<PartitionState> {
    this.#checkOpen()
    const state = this.#partition(r.topic, r.partition)
    const node = this.#nodes.get(r.nodeId)
    if (node === undefined || node.fenced || node.incarnation !== r.incarnation) {
      throw new StrandError('STALE_STATE', `${r.topic}/${r.partition}: node ${r.nodeId} (incarnation ${r.incarnation}) is not a live member of the cluster`)
    }
    if (state.leader !== r.nodeId || state.leaderEpoch !== r.leaderEpoch || state.partitionEpoch !== r.partitionEpoch) {
      throw new StrandError('STALE_STATE', `${r.topic}/${r.partition}: the change was made from leader ${r.nodeId} epoch ${r.leaderEpoch} version ${r.partitionEpoch}; now leader ${state.leader} epoch ${state.leaderEpoch} version ${state.partitionEpoch}`)
    }
    if (!Array.isArray(r.isr) || !r.isr.includes(state.leader) || new Set(r.isr).size !== r.isr.length || r.isr.some((n) => !state.replicas.includes(n))) {
      throw invalidArgument('isr', `distinct replicas of ${r.topic}/${r.partition} including the leader ${state.leader}`, r.isr)
    }
    for (const n of r.isr) {
      if (!state.isr.includes(n) && !this.#alive(n)) throw new StrandError('STALE_STATE', `${r.topic}/${r.partition}: node ${n} is not alive and cannot join the ISR`)
    }
    state.isr = state.replicas.filter((n) => r.isr.includes(n))
    this.#changed(state)
    return copy(state)
  }

  async createTopic(r: CreateTopicRequest): Promise<PartitionState[]> {
    this.#checkOpen()
    validateTopicName(r.name)
    if (this.#topics.has(r.name)) throw new StrandError('TOPIC_EXISTS', `topic ${r.name} exists`)
    if (!Number.isInteger(r.partitions) || r.partitions < 1 || r.partitions > MAX_PARTITIONS) throw invalidArgument('partitions', `an integer in [1, ${MAX_PARTITIONS}]`, r.partitions)
    const config = normaliseTopicConfig(r.config)
    const live = [...this.#nodes.keys()].filter((n) => this.#alive(n)).sort((a, b) => a - b)
    let assignment: NodeId[][]
    if (r.assignment !== undefined) {
      if (!Array.isArray(r.assignment) || r.assignment.length !== r.partitions) throw invalidArgument('assignment', `${r.partitions} replica lists`, r.assignment)
      for (const replicas of r.assignment) {
        if (!Array.isArray(replicas) || replicas.length === 0 || new Set(replicas).size !== replicas.length) throw invalidArgument('assignment', 'non-empty lists of distinct node ids', replicas)
        replicas.forEach(checkNode)
      }
      assignment = r.assignment.map((x) => [...x])
    } else {
      if (!Number.isInteger(r.replicationFactor) || r.replicationFactor < 1) throw invalidArgument('replicationFactor', 'an integer >= 1', r.replicationFactor)
      if (r.replicationFactor > live.length) throw new StrandError('NOT_ENOUGH_REPLICAS', `replication factor ${r.replicationFactor} needs that many live nodes; ${live.length} are alive (${live.join(', ')})`)
      // Kafka's round-robin: partition i's replicas start at node (start + i), so leaders spread.
      const start = this.#nextAssignment++
      assignment = Array.from({ length: r.partitions }, (_, i) => Array.from({ length: r.replicationFactor }, (_, j) => live[(start + i + j) % live.length]))
    }
    const partitions = assignment.map((replicas, i): PartitionState => {
      const alive = replicas.filter((n) => this.#alive(n))
      return { topic: r.name, partition: i, replicas, leader: alive[0] ?? NO_NODE, leaderEpoch: 0, isr: alive.length > 0 ? alive : [...replicas], partitionEpoch: 0 }
    })
    this.#topics.set(r.name, { name: r.name, partitions, config })
    this.#bump()
    return partitions.map(copy)
  }

  async shutdown(nodeId: NodeId, incarnation: number): Promise<void> {
    this.#checkOpen()
    const node = this.#nodes.get(nodeId)
    if (node === undefined || node.incarnation !== incarnation) return
    node.left = true
    if (!node.fenced) this.#fence(nodeId)
  }

  async electPreferredLeaders(): Promise<number> {
    this.#checkOpen()
    let moved = 0
    for (const t of this.#topics.values()) {
      for (const p of t.partitions) {
        const preferred = p.replicas[0]
        if (p.leader !== preferred && p.isr.includes(preferred) && this.#alive(preferred)) {
          p.leader = preferred
          p.leaderEpoch++
          this.#changed(p)
          moved++
        }
      }
    }
    return moved
  }

  async describe(): Promise<ClusterView> {
    return this.#view()
  }

  /** Fences a node now, as if its session had timed out (tests, operators). */
  fence(nodeId: NodeId): void {
    const node = this.#nodes.get(nodeId)
    if (node !== undefined && !node.fenced) this.#fence(nodeId)
  }

  /** Stops the session timer and answers held heartbeats. */
  close(): void {
    this.#closed = true
    clearInterval(this.#timer)
    for (const w of [...this.#watchers]) w()
  }

  #checkOpen(): void {
    if (this.#closed) throw new StrandError('LOG_CLOSED', 'the controller is closed')
  }

  #alive(n: NodeId): boolean {
    const node = this.#nodes.get(n)
    return node !== undefined && !node.fenced
  }

  #partition(topic: string, partition: number): PartitionState {
    const t = this.#topics.get(topic)
    if (t === undefined) throw new StrandError('UNKNOWN_TOPIC', `topic ${topic} is not known to the controller`)
    const p = t.partitions[partition]
    if (p === undefined) throw new StrandError('UNKNOWN_PARTITION', `${topic} has no partition ${partition}`)
    return p
  }

  #expireSessions(): void {
    const now = Date.now()
    for (const [id, node] of this.#nodes) {
      if (!node.fenced && now - node.lastSeen > this.options.sessionTimeoutMs) this.#fence(id)
    }
  }

  /** The node is gone: out of every ISR it can leave, and a new leader wherever it led. */
  #fence(id: NodeId): void {
    this.#nodes.get(id)!.fenced = true
    for (const t of this.#topics.values()) {
      for (const p of t.partitions) {
        if (!p.replicas.includes(id)) continue
        if (p.leader === id) {
          this.#elect(p, id)
        } else if (p.isr.includes(id) && p.isr.length > 1) {
          p.isr = p.isr.filter((n) => n !== id)
          this.#changed(p)
        }
      }
    }
  }

  /** Chooses a new leader for `p` without `gone`: the first live ISR member in replica order. */
  #elect(p: PartitionState, gone: NodeId): void {
    const rest = p.isr.filter((n) => n !== gone)
    const clean = p.replicas.find((n) => rest.includes(n) && this.#alive(n))
    if (clean !== undefined) {
      p.leader = clean
      p.isr = rest
    } else if (this.options.uncleanLeaderElection && p.replicas.some((n) => n !== gone && this.#alive(n))) {
      p.leader = p.replicas.find((n) => n !== gone && this.#alive(n))!
      p.isr = [p.leader]
    } else {
      // Offline: the ISR keeps the last replica known to have everything committed.
      p.leader = NO_NODE
    }
    p.leaderEpoch++
    this.#changed(p)
  }

  /** A node is (back) up: offline partitions it can lead get it as leader. */
  #nodeUp(id: NodeId): void {
    for (const t of this.#topics.values()) {
      for (const p of t.partitions) {
        if (p.leader !== NO_NODE || !p.replicas.includes(id)) continue
        if (p.isr.includes(id)) {
          p.leader = id
          p.isr = p.isr.filter((n) => n === id || this.#alive(n))
        } else if (this.options.uncleanLeaderElection) {
          p.leader = id
          p.isr = [id]
        } else {
          continue
        }
        p.leaderEpoch++
        this.#changed(p)
      }
    }
  }

  #changed(p: PartitionState): void {
    p.partitionEpoch++
    this.#bump()
  }

  #bump(): void {
    this.#version++
    for (const w of [...this.#watchers]) w()
  }

  #view(): ClusterView {
    return { version: this.#version, topics: [...this.#topics.values()].map((t) => ({ name: t.name, config: { ...t.config }, partitions: t.partitions.map(copy) })) }
  }
}

function copy(p: PartitionState): PartitionState {
  return { ...p, replicas: [...p.replicas], isr: [...p.isr] }
}

function checkNode(n: unknown): void {
  if (!Number.isSafeInteger(n) || (n as number) < 0) throw invalidArgument('nodeId', 'an integer >= 0', n)
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>
}

// --- over a transport ---------------------------------------------------------------------

export interface RemoteControllerOptions {
  /** Added to a heartbeat's own wait, and the whole limit of other requests. @default 10000 */
  requestTimeoutMs?: number
}

/** A Controller in another process (or behind a faulty network), reached through a transport. */
export class RemoteController implements Controller {
  #transport: Transport
  #to: NodeId
  #timeout: number

  constructor(transport: Transport, controllerId: NodeId, options: RemoteControllerOptions = {}) {
    checkNode(controllerId)
    this.#transport = transport
    this.#to = controllerId
    this.#timeout = options.requestTimeoutMs ?? 10_000
    if (!Number.isSafeInteger(this.#timeout) || this.#timeout < 1) throw invalidArgument('requestTimeoutMs', 'an integer >= 1', this.#timeout)
  }

  async heartbeat(request: HeartbeatRequest): Promise<ClusterView> {
    return await this.#call('heartbeat', { request }, request.maxWaitMs + this.#timeout) as unknown as ClusterView
  }

  async alterIsr(request: AlterIsrRequest): Promise<PartitionState> {
    return await this.#call('alterIsr', { request }) as unknown as PartitionState
  }

  async createTopic(request: CreateTopicRequest): Promise<PartitionState[]> {
    return (await this.#call('createTopic', { request })).partitions as PartitionState[]
  }

  async shutdown(nodeId: NodeId, incarnation: number): Promise<void> {
    await this.#call('shutdown', { nodeId, incarnation })
  }

  async electPreferredLeaders(): Promise<number> {
    return (await this.#call('electPreferred', {})).moved as number
  }

  async describe(): Promise<ClusterView> {
    return await this.#call('describe', {}) as unknown as ClusterView
  }

  async #call(op: string, fields: Record<string, unknown>, timeoutMs = this.#timeout): Promise<Message> {
    const answer = await this.#transport.request(this.#to, { type: `controller.${op}`, ...fields }, timeoutMs)
    return answer
  }
}

/** Answers RemoteController requests arriving on `transport` with `controller`. */
export function serveController(controller: Controller, transport: Transport): Promise<void> {
  return transport.serve(async (_from, m): Promise<Message> => {
    switch (m.type) {
      case 'controller.heartbeat': return { type: 'view', ...(await controller.heartbeat(m.request as HeartbeatRequest)) }
      case 'controller.alterIsr': return { type: 'state', ...(await controller.alterIsr(m.request as AlterIsrRequest)) }
      case 'controller.createTopic': return { type: 'created', partitions: await controller.createTopic(m.request as CreateTopicRequest) }
      case 'controller.shutdown': await controller.shutdown(m.nodeId as NodeId, m.incarnation as number); return { type: 'ok' }
      case 'controller.electPreferred': return { type: 'elected', moved: await controller.electPreferredLeaders() }
      case 'controller.describe': return { type: 'view', ...(await controller.describe()) }
      default: throw new StrandError('INVALID_ARGUMENT', `the controller does not answer ${JSON.stringify(m.type)}`)
    }
  })
}
