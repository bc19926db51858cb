/**
 * The in-process transport: nodes in one process, requests as direct calls.
 *
 * `InProcessNetwork` is the wire; `network.transport(id)` is one node's end of it. Messages
 * are passed by reference (the `records` Buffer a leader read is the Buffer its follower
 * appends: no copy), but never synchronously: the handler runs in a later microtask, so a
 * caller never re-enters itself, as with a real network. Requests to a node that has not
 * called `serve` (or has closed) fail with NODE_UNREACHABLE.
 */
import { StrandError, closed } from '../errors.js'
import { type Message, type NodeId, type RequestHandler, type Transport, asStrandError, trackRequest } from './transport.js'

export class InProcessNetwork {
  #handlers = new Map<NodeId, RequestHandler>()

  /** Node `id`'s end of the network. */
  transport(id: NodeId): Transport {
    if (!Number.isSafeInteger(id) || id < 0) throw new StrandError('INVALID_ARGUMENT', `Expected a node id (an integer >= 0), got ${id}`)
    return new InProcessTransport(this, id)
  }

  /** @internal */
  attach(id: NodeId, handler: RequestHandler): void {
    if (this.#handlers.has(id)) throw new StrandError('INVALID_ARGUMENT', `node ${id} is already serving on this network`)
    this.#handlers.set(id, handler)
  }

  /** @internal */
  detach(id: NodeId, handler: RequestHandler): void {
    if (this.#handlers.get(id) === handler) this.#handlers.delete(id)
  }

  /** @internal */
  handlerOf(id: NodeId): RequestHandler | undefined {
    return this.#handlers.get(id)
  }
}

class InProcessTransport implements Transport {
  readonly nodeId: NodeId
  #network: InProcessNetwork
  #handler: RequestHandler | null = null
  #pending = new Set<(err: Error) => void>()
  #closed = false

  constructor(network: InProcessNetwork, nodeId: NodeId) {
    this.#network = network
    this.nodeId = nodeId
  }

  async serve(handler: RequestHandler): Promise<void> {
    if (this.#closed) throw closed(`transport of node ${this.nodeId}`)
    if (this.#handler !== null) throw new StrandError('INVALID_ARGUMENT', `node ${this.nodeId} already serves`)
    this.#network.attach(this.nodeId, handler)
    this.#handler = handler
  }

  request(to: NodeId, message: Message, timeoutMs: number): Promise<Message> {
    if (this.#closed) return Promise.reject(closed(`transport of node ${this.nodeId}`))
    const { promise, settle } = trackRequest(this.#pending, to, message.type, timeoutMs)
    queueMicrotask(() => {
      const handler = this.#network.handlerOf(to)
      if (handler === undefined) {
        settle(new StrandError('NODE_UNREACHABLE', `node ${to} is not on the network`))
        return
      }
      let answer: Promise<Message>
      try {
        answer = handler(this.nodeId, message)
      } catch (err) {
        answer = Promise.reject(err)
      }
      answer.then((a) => settle(null, a), (err) => settle(asStrandError(err)))
    })
    return promise
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    if (this.#handler !== null) this.#network.detach(this.nodeId, this.#handler)
    for (const fail of [...this.#pending]) fail(closed(`transport of node ${this.nodeId}`))
  }
}
