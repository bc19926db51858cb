/**
 * One partition's replication on one node: the leader's bookkeeping (followers' positions,
 * the ISR, the high watermark) or the follower's fetch loop. The partition's storage stays in
 * Partition; this class only decides what it may do and when.
 *
 * Invariants:
 * - Roles change only through `apply`, one change at a time, and only forward: a state with
 *   an older leader epoch (or, in the same epoch, an older partition epoch) is ignored.
 * - Leader: HW = min over the ISR (and replicas joining it) of their log end offsets, the
 *   leader's own included; a follower's offset counts only once it fetched in this epoch, so
 *   HW never passes what an in-sync replica has. HW never moves back.
 * - Leader: the ISR this node uses is the controller's; a shrink applies only after the
 *   controller accepted it (so a leader cut off from the controller cannot commit alone), an
 *   expansion counts towards HW from the moment it is asked for (more replicas is safer).
 * - Follower: appends only what the leader of its current epoch sent, after truncating to
 *   where its log stops agreeing with the leader's (leader epochs, KIP-101), never to HW.
 */
import { StrandError } from '../errors.js'
import type { Partition, ReplicaRole } from '../partition.js'
import type { Controller } from './controller.js'
import type { FetchRequest, FetchResponse, PartitionState } from './protocol.js'
import { NO_NODE } from './protocol.js'
import type { NodeId, Transport } from './transport.js'

export interface ReplicaSettings {
  nodeId: NodeId
  incarnation: number
  transport: Transport
  controller: Controller
  replicaLagTimeMaxMs: number
  fetchMaxWaitMs: number
  fetchMaxBytes: number
  fetchBackoffMs: number
  requestTimeoutMs: number
}

interface FollowerState {
  /** The follower's log end offset as of its last fetch in this epoch; -1 before one. */
  leo: number
  /** Last time it was known to have everything the leader had (Kafka's lastCaughtUpTimeMs). */
  lastCaughtUpMs: number
  lastFetchMs: number
  /** The leader's log end offset at the follower's previous fetch. */
  leaderLeoAtLastFetch: number
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

export class Replica {
  readonly partition: Partition
  #s: ReplicaSettings
  #state: PartitionState | null = null
  #transition: Promise<void> = Promise.resolve()
  // Leader
  #followers = new Map<NodeId, FollowerState>()
  #isr = new Set<NodeId>()
  #joining = new Set<NodeId>()
  #altering = false
  #epochStart = 0
  // Follower
  #fetching: Promise<void> | null = null
  /** What the fetch loop is doing to the log now (truncating, appending): a new role waits for it, not for a fetch in flight. */
  #processing: Promise<void> | null = null
  #stopped = false
  /** Fetches held until something is appended (or the HW moves), woken by the append listener. */
  #parked = new Set<() => void>()
  #listener = (): void => this.#onAppend()

  constructor(partition: Partition, settings: ReplicaSettings) {
    this.partition = partition
    this.#s = settings
    partition.addAppendListener(this.#listener)
  }

  get state(): PartitionState | null { return this.#state }
  get isLeader(): boolean { return this.#state !== null && this.#state.leader === this.#s.nodeId && this.partition.role?.kind === 'leader' }
  /** The ISR as this leader uses it (the controller's, plus replicas it asked to add). */
  get isr(): NodeId[] { return [...this.#isr] }

  /** Applies the controller's state for this partition, if it is newer than the one held. */
  apply(state: PartitionState): Promise<void> {
    const run = async (): Promise<void> => {
      if (this.#stopped) return
      const cur = this.#state
      if (cur !== null && (state.leaderEpoch < cur.leaderEpoch || (state.leaderEpoch === cur.leaderEpoch && state.partitionEpoch <= cur.partitionEpoch))) return
      const me = this.#s.nodeId
      const sameEpoch = cur !== null && cur.leaderEpoch === state.leaderEpoch && cur.leader === state.leader
      this.#state = state
      if (!state.replicas.includes(me)) {
        await this.#becomeFollower(state, false)
      } else if (state.leader === me) {
        if (sameEpoch && this.isLeader) this.#adoptIsr(state)
        else await this.#becomeLeader(state)
      } else if (!sameEpoch || this.#fetching === null) {
        await this.#becomeFollower(state, state.leader !== NO_NODE)
      }
    }
    this.#transition = this.#transition.then(run, run)
    return this.#transition
  }

  /** Stops fetching and answering; the partition keeps its role until the log closes. */
  async stop(): Promise<void> {
    this.#stopped = true
    this.partition.removeAppendListener(this.#listener)
    this.#wakeParked()
    await this.#transition.catch(() => {})
    await this.#processing?.catch(() => {})
  }

  // --- leader -------------------------------------------------------------------------

  async #becomeLeader(state: PartitionState): Promise<void> {
    await this.#stopFetching()
    const now = Date.now()
    this.#followers.clear()
    // Followers' offsets from an earlier epoch mean nothing now: HW waits for a fetch from each.
    for (const n of state.replicas) if (n !== this.#s.nodeId) this.#followers.set(n, { leo: -1, lastCaughtUpMs: now, lastFetchMs: now, leaderLeoAtLastFetch: -1 })
    this.#isr = new Set(state.isr)
    this.#joining.clear()
    this.#epochStart = this.partition.logEndOffset
    await this.partition.setRole(this.#role('leader', state))
    this.#maybeAdvanceHw()
  }

  #role(kind: 'leader' | 'follower', state: PartitionState): ReplicaRole {
    return { kind, leaderEpoch: state.leaderEpoch, isrSize: kind === 'leader' ? this.#isr.size : 0, minInsyncReplicas: this.partition.config.minInsyncReplicas }
  }

  /** The controller's ISR for the epoch this node leads (after an alterIsr or a fence). */
  #adoptIsr(state: PartitionState): void {
    this.#isr = new Set(state.isr)
    for (const n of this.#joining) if (this.#isr.has(n)) this.#joining.delete(n)
    this.partition.setRole(this.#role('leader', state)).catch(() => {})
    this.#maybeAdvanceHw()
  }

  /** Answers a follower's fetch (see FetchRequest). Holds it up to maxWaitMs when there is nothing new. */
  async handleFetch(r: FetchRequest): Promise<FetchResponse> {
    const p = this.partition
    const state = this.#state
    if (state === null || !this.isLeader) throw new StrandError('NOT_LEADER', `${p.topic}/${p.id}: node ${this.#s.nodeId} is not the leader`)
    if (r.leaderEpoch < state.leaderEpoch) throw new StrandError('FENCED_LEADER_EPOCH', `${p.topic}/${p.id}: fetch in epoch ${r.leaderEpoch}, the leader is in ${state.leaderEpoch}`)
    if (r.leaderEpoch > state.leaderEpoch) throw new StrandError('UNKNOWN_LEADER_EPOCH', `${p.topic}/${p.id}: fetch in epoch ${r.leaderEpoch}, this leader knows ${state.leaderEpoch}`)
    const follower = this.#followers.get(r.replicaId)
    if (follower === undefined) throw new StrandError('INVALID_ARGUMENT', `${p.topic}/${p.id}: node ${r.replicaId} is not a replica`)
    if (r.lastFetchedEpoch >= 0) {
      const end = p.endOffsetForEpoch(r.lastFetchedEpoch)
      if (end.epoch < 0) throw new StrandError('UNKNOWN_LEADER_EPOCH', `${p.topic}/${p.id}: the follower's last epoch ${r.lastFetchedEpoch} is unknown to the leader`)
      if (end.epoch < r.lastFetchedEpoch || end.endOffset < r.fetchOffset) {
        // Its log diverges: it truncates first. Its offset says nothing about what it shares.
        return this.#answer({ divergingEpoch: { epoch: end.epoch, endOffset: end.endOffset } })
      }
    }
    if (r.fetchOffset < p.logStartOffset || r.fetchOffset > p.logEndOffset) return this.#answer({ outOfRange: true })
    this.#recordFetch(r.replicaId, follower, r.fetchOffset)
    if (r.fetchOffset === p.logEndOffset && r.maxWaitMs > 0) {
      const hw = p.highWatermark
      await this.#park(r.maxWaitMs, () => p.logEndOffset > r.fetchOffset || p.highWatermark !== hw || !this.isLeader)
      if (!this.isLeader || this.#state?.leaderEpoch !== state.leaderEpoch) throw new StrandError('NOT_LEADER', `${p.topic}/${p.id}: leadership moved while the fetch waited`)
    }
    const read = p.read(r.fetchOffset, { maxBytes: r.maxBytes, isolation: 'log', verify: false })
    return this.#answer({ records: contiguous(read.batches.map((b) => b.buffer)) })
  }

  #answer(extra: Partial<FetchResponse>): FetchResponse {
    const p = this.partition
    return { type: 'fetch', highWatermark: p.highWatermark, logStartOffset: p.logStartOffset, logEndOffset: p.logEndOffset, ...extra }
  }

  #recordFetch(id: NodeId, f: FollowerState, offset: number): void {
    const now = Date.now()
    const leo = this.partition.logEndOffset
    if (offset >= leo) f.lastCaughtUpMs = now
    else if (f.leaderLeoAtLastFetch >= 0 && offset >= f.leaderLeoAtLastFetch) f.lastCaughtUpMs = Math.max(f.lastCaughtUpMs, f.lastFetchMs)
    f.leaderLeoAtLastFetch = leo
    f.lastFetchMs = now
    f.leo = offset
    // Rejoin: caught up to HW, and to the start of this epoch (it has nothing of an older leader's it should not).
    if (!this.#isr.has(id) && !this.#joining.has(id) && offset >= this.partition.highWatermark && offset >= this.#epochStart) {
      if (this.#alterIsr([...this.#isr, id])) this.#joining.add(id)
    }
    this.#maybeAdvanceHw()
  }

  /** HW = the smallest log end offset among the ISR and the replicas joining it. */
  #maybeAdvanceHw(): void {
    if (!this.isLeader) return
    let hw = this.partition.logEndOffset
    for (const n of this.#isr) {
      if (n === this.#s.nodeId) continue
      const f = this.#followers.get(n)
      if (f === undefined || f.leo < 0) return
      if (f.leo < hw) hw = f.leo
    }
    for (const n of this.#joining) {
      const f = this.#followers.get(n)
      if (f !== undefined && f.leo >= 0 && f.leo < hw) hw = f.leo
    }
    this.partition.advanceHighWatermark(hw)
  }

  /** Drops followers that have not caught up within replicaLagTimeMaxMs; the manager calls it periodically. */
  checkIsr(now = Date.now()): void {
    if (!this.isLeader || this.#altering) return
    const lagging = [...this.#isr].filter((n) => {
      const f = this.#followers.get(n)
      return n !== this.#s.nodeId && f !== undefined && now - f.lastCaughtUpMs > this.#s.replicaLagTimeMaxMs
    })
    if (lagging.length > 0) this.#alterIsr([...this.#isr].filter((n) => !lagging.includes(n)))
  }

  /** Asks the controller for a new ISR; one request at a time, adopted only once accepted. Returns whether it asked. */
  #alterIsr(isr: NodeId[]): boolean {
    const state = this.#state
    if (state === null || this.#altering) return false
    this.#altering = true
    const p = this.partition
    this.#s.controller.alterIsr({ nodeId: this.#s.nodeId, incarnation: this.#s.incarnation, topic: p.topic, partition: p.id, leaderEpoch: state.leaderEpoch, partitionEpoch: state.partitionEpoch, isr })
      .then((next) => this.apply(next), () => {
        // Refused or unreachable: the controller's next heartbeat answer says what is true.
        for (const n of isr) this.#joining.delete(n)
      })
      .finally(() => { this.#altering = false })
    return true
  }

  #onAppend(): void {
    if (this.#parked.size > 0) this.#wakeParked()
    if (this.#isr.size > 0 && this.isLeader) this.#maybeAdvanceHw()
  }

  #park(maxWaitMs: number, ready: () => boolean): Promise<void> {
    if (ready()) return Promise.resolve()
    return new Promise((resolve) => {
      const wake = (): void => {
        if (!ready() && !this.#stopped && Date.now() < deadline) return
        clearTimeout(timer)
        this.#parked.delete(wake)
        resolve()
      }
      const deadline = Date.now() + maxWaitMs
      const timer = setTimeout(() => { this.#parked.delete(wake); resolve() }, maxWaitMs)
      this.#parked.add(wake)
    })
  }

  #wakeParked(): void {
    for (const w of [...this.#parked]) w()
  }

  // --- follower -----------------------------------------------------------------------

  async #becomeFollower(state: PartitionState, fetch: boolean): Promise<void> {
    await this.#stopFetching()
    this.#followers.clear()
    this.#isr.clear()
    this.#joining.clear()
    this.#wakeParked()
    await this.partition.setRole({ kind: 'follower', leaderEpoch: state.leaderEpoch, isrSize: 0, minInsyncReplicas: this.partition.config.minInsyncReplicas })
    if (fetch && !this.#stopped) this.#fetching = this.#follow(state)
  }

  /**
   * Ends the fetch loop. Waits for what it is doing to the log, not for its fetch in flight:
   * a fetch to a dead leader may take its whole timeout, and failover must not.
   */
  async #stopFetching(): Promise<void> {
    this.#fetching = null
    await this.#processing?.catch(() => {})
  }

  #isCurrent(state: PartitionState): boolean {
    return !this.#stopped && this.#state !== null && this.#state.leaderEpoch === state.leaderEpoch && this.#state.leader === state.leader && this.#fetching !== null
  }

  /** The fetch loop for one leader epoch. Ends when the epoch does (or the replica stops). */
  async #follow(state: PartitionState): Promise<void> {
    // Let #fetching be set before the loop looks at it.
    await Promise.resolve()
    const p = this.partition
    const s = this.#s
    while (this.#isCurrent(state)) {
      const request: FetchRequest = {
        type: 'fetch', topic: p.topic, partition: p.id, replicaId: s.nodeId, leaderEpoch: state.leaderEpoch,
        fetchOffset: p.logEndOffset, lastFetchedEpoch: p.latestEpoch, maxBytes: s.fetchMaxBytes, maxWaitMs: s.fetchMaxWaitMs,
      }
      let res: FetchResponse
      try {
        res = await s.transport.request(state.leader, request as unknown as Parameters<Transport['request']>[1], s.fetchMaxWaitMs + s.requestTimeoutMs) as unknown as FetchResponse
      } catch {
        // Not the leader (yet, or any more), a stale epoch, a lost message: wait and ask again;
        // a new state from the controller ends this loop.
        if (this.#isCurrent(state)) await sleep(s.fetchBackoffMs)
        continue
      }
      if (!this.#isCurrent(state) || p.logEndOffset !== request.fetchOffset) continue
      const processing = this.#processing = this.#onFetched(request, res)
      try {
        await processing
      } catch (err) {
        if (p.isClosed) return
        // A batch that failed its checks, or a write error: back off; a failed partition stops here.
        if (err instanceof StrandError && err.code === 'PARTITION_FAILED') return
        await sleep(s.fetchBackoffMs)
      } finally {
        if (this.#processing === processing) this.#processing = null
      }
      // A truncation or restart that left the log where it was made no progress: asking again
      // at once would spin (over the in-process network, in microtasks that starve timers).
      if ((res.divergingEpoch !== undefined || res.outOfRange === true) && p.logEndOffset === request.fetchOffset && this.#isCurrent(state)) {
        await sleep(s.fetchBackoffMs)
      }
    }
  }

  async #onFetched(request: FetchRequest, res: FetchResponse): Promise<void> {
    const p = this.partition
    if (res.divergingEpoch !== undefined) {
      await p.truncateTo(this.#truncationPoint(res.divergingEpoch))
      return
    }
    if (res.outOfRange === true) {
      if (request.fetchOffset < res.logStartOffset) await p.truncateFullyAndStartAt(res.logStartOffset)
      else if (request.fetchOffset > res.logEndOffset) await p.truncateTo(res.logEndOffset)
      return
    }
    if (res.records !== undefined && res.records.length > 0) await p.appendReplicated(res.records)
    p.advanceHighWatermark(res.highWatermark)
    // The leader's retention and deleteRecordsBefore reach the follower through its log start.
    const start = Math.min(res.logStartOffset, p.highWatermark)
    if (start > p.logStartOffset) await p.deleteRecordsBefore(start)
  }

  /** Kafka's rule: truncate to where the leader's epoch ends, or, if this log lacks that epoch, to where its own last older epoch ends. */
  #truncationPoint(leader: { epoch: number, endOffset: number }): number {
    const p = this.partition
    if (leader.epoch < 0) return Math.min(leader.endOffset, p.logEndOffset)
    const mine = p.endOffsetForEpoch(leader.epoch)
    if (mine.epoch < 0) return Math.min(leader.endOffset, p.logEndOffset)
    if (mine.epoch !== leader.epoch) return mine.endOffset
    return Math.min(leader.endOffset, mine.endOffset)
  }
}

/** One Buffer over consecutive batches read together (they are slices of one read buffer). */
function contiguous(parts: Buffer[]): Buffer | undefined {
  if (parts.length === 0) return undefined
  if (parts.length === 1) return parts[0]
  const first = parts[0]
  const last = parts[parts.length - 1]
  if (first.buffer === last.buffer) {
    const length = last.byteOffset + last.length - first.byteOffset
    let sum = 0
    for (const x of parts) sum += x.length
    if (sum === length) return Buffer.from(first.buffer, first.byteOffset, length)
  }
  return Buffer.concat(parts)
}
