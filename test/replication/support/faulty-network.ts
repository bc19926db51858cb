/**
 * A fault-injecting Transport for replication tests: wraps any Transport (usually an
 * `InProcessNetwork` node's end) and, following one shared, seeded fault plan, drops,
 * delays and duplicates the requests that pass through it, and cuts nodes or links off.
 *
 * What a caller sees, per request (decided once, when it is sent):
 * - drop: the request is never delivered, or it is delivered and its answer is lost; either
 *   way the caller gets REQUEST_TIMED_OUT at its own timeout, as over a real network.
 * - delay: a random wait before delivery and/or before the answer; two requests with
 *   different delays overtake each other, which is all the reordering a request/response
 *   protocol can see.
 * - duplicate: the request is delivered twice (the copy after its own delay); the caller gets
 *   one answer, the copy's is discarded.
 * - `isolate(node)`: everything to and from the node is dropped, also what was already in
 *   flight when it is delivered or answered, until `heal(node)`. `cut(a, b)` does the same
 *   for the one link between a and b.
 *
 * Every wrapper of one `FaultyNetwork` draws from the same random stream (`rng` from
 * test/helpers.ts), so the seed fixes the plan; timings still vary from run to run, so a
 * replay from the seed reproduces the faults' mix, not the interleaving. Wrap every node,
 * the controller's transport included: isolation then cuts a node off from the controller too.
 */
import { closed } from '../../../lib/errors.js'
import { type Message, type NodeId, type RequestHandler, type Transport, trackRequest } from '../../../lib/replication/transport.js'
import { rng } from '../../helpers.js'

export interface FaultPlan {
  /** Probability that a request is never delivered. */
  dropRequest: number
  /** Probability that a delivered request's answer is lost. */
  dropAnswer: number
  /** Probability of a delay before delivery, and (drawn again) before the answer. */
  delay: number
  /** Upper bound of one such delay, in ms. */
  maxDelayMs: number
  /** Probability that a request is delivered twice. */
  duplicate: number
}

export const NO_FAULTS: Readonly<FaultPlan> = Object.freeze({ dropRequest: 0, dropAnswer: 0, delay: 0, maxDelayMs: 0, duplicate: 0 })

export interface FaultStats {
  requests: number
  droppedRequests: number
  droppedAnswers: number
  delayed: number
  duplicated: number
  /** Requests or answers lost to an isolated node or a cut link. */
  blocked: number
}

export class FaultyNetwork {
  readonly seed: number
  /** The shared random stream: the test draws its own choices from it too, so one seed drives everything. */
  readonly random: () => number
  /** The plan in force; change it at any time (it applies to requests sent afterwards). */
  plan: FaultPlan
  readonly stats: FaultStats = { requests: 0, droppedRequests: 0, droppedAnswers: 0, delayed: 0, duplicated: 0, blocked: 0 }
  #isolated = new Set<NodeId>()
  #cuts = new Set<string>()

  constructor(seed: number, plan: Partial<FaultPlan> = {}) {
    this.seed = seed
    this.random = rng(seed)
    this.plan = { ...NO_FAULTS, ...plan }
  }

  /** `inner` with this network's faults in front of its requests. */
  wrap(inner: Transport): Transport {
    return new FaultyTransport(this, inner)
  }

  isolate(node: NodeId): void { this.#isolated.add(node) }
  heal(node: NodeId): void { this.#isolated.delete(node) }
  isIsolated(node: NodeId): boolean { return this.#isolated.has(node) }
  /** Drops everything between `a` and `b` (both ways) until `restore`. */
  cut(a: NodeId, b: NodeId): void { this.#cuts.add(linkKey(a, b)) }
  restore(a: NodeId, b: NodeId): void { this.#cuts.delete(linkKey(a, b)) }
  /** No isolation, no cuts, no random faults. */
  healAll(): void {
    this.#isolated.clear()
    this.#cuts.clear()
    this.plan = { ...NO_FAULTS }
  }

  /** @internal Whether traffic between the two nodes is lost right now. */
  blocked(from: NodeId, to: NodeId): boolean {
    return this.#isolated.has(from) || this.#isolated.has(to) || this.#cuts.has(linkKey(from, to))
  }

  /** @internal A random delay per the plan (0 most of the time). */
  delayMs(): number {
    if (this.plan.delay <= 0 || this.random() >= this.plan.delay) return 0
    this.stats.delayed++
    return 1 + Math.floor(this.random() * this.plan.maxDelayMs)
  }

  /** @internal */
  chance(p: number): boolean {
    return p > 0 && this.random() < p
  }
}

function linkKey(a: NodeId, b: NodeId): string {
  return a < b ? `${a}-${b}` : `${b}-${a}`
}

/**
 * Runs `fn` after `ms`, and never in the same turn of the event loop: like a real network, the
 * wrapper always yields, so a protocol loop that makes no progress spins visibly instead of
 * starving every timer (and the test's own bounds) in microtasks.
 */
const later = (ms: number, fn: () => void): void => {
  if (ms <= 0) setImmediate(fn)
  else setTimeout(fn, ms).unref()
}

class FaultyTransport implements Transport {
  readonly nodeId: NodeId
  #net: FaultyNetwork
  #inner: Transport
  #pending = new Set<(err: Error) => void>()
  #closed = false

  constructor(net: FaultyNetwork, inner: Transport) {
    this.#net = net
    this.#inner = inner
    this.nodeId = inner.nodeId
  }

  serve(handler: RequestHandler): Promise<void> {
    return this.#inner.serve(handler)
  }

  request(to: NodeId, message: Message, timeoutMs: number): Promise<Message> {
    if (this.#closed) return Promise.reject(closed(`transport of node ${this.nodeId}`))
    const net = this.#net
    const from = this.nodeId
    net.stats.requests++
    // Every decision is drawn now, in send order, so the seed alone decides them.
    const dropRequest = net.chance(net.plan.dropRequest)
    const dropAnswer = net.chance(net.plan.dropAnswer)
    const before = net.delayMs()
    const after = net.delayMs()
    const duplicate = net.chance(net.plan.duplicate)
    const duplicateDelay = duplicate ? net.delayMs() : 0
    if (dropRequest) net.stats.droppedRequests++
    if (dropAnswer) net.stats.droppedAnswers++
    if (duplicate) net.stats.duplicated++
    const deadline = Date.now() + timeoutMs
    const request = trackRequest(this.#pending, to, message.type, timeoutMs)
    const { settle } = request
    if (dropRequest) return request.promise
    const answered = (err: Error | null, answer?: Message): void => {
      later(after, () => {
        if (dropAnswer) return
        if (net.blocked(from, to)) { net.stats.blocked++; return }
        settle(err, answer)
      })
    }
    const deliver = (copy: boolean): void => {
      if (this.#closed || (!copy && request.settled)) return
      if (net.blocked(from, to)) { net.stats.blocked++; return }
      const remaining = Math.max(1, deadline - Date.now())
      const sent = this.#inner.request(to, message, remaining)
      if (copy) sent.catch(() => {})
      else sent.then((a) => answered(null, a), (e: Error) => answered(e))
    }
    later(before, () => deliver(false))
    if (duplicate) later(before + duplicateDelay, () => deliver(true))
    return request.promise
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    for (const fail of [...this.#pending]) fail(closed(`transport of node ${this.nodeId}`))
    await this.#inner.close()
  }
}
