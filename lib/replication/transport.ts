/**
 * The transport: how the nodes of a cluster talk. This file is the whole plug point.
 *
 * strand's core never touches the network. Replication (followers fetching from leaders) and
 * the control plane (nodes heartbeating to the controller, leaders asking it to change the
 * ISR) are request/response exchanges between numbered nodes, and everything they need from
 * a network is `Transport`: send a message to a node and get its answer, and answer the
 * messages sent to this node. Two implementations ship: `InProcessNetwork` (direct calls,
 * for tests and for several logs in one process) and `TcpTransport` (node:net). Anything
 * else — TLS, HTTP/2, a message bus — is one more class with these three methods.
 *
 * Contract every implementation keeps:
 * - A message is a plain object with a string `type`, JSON-serialisable fields, and at most
 *   one binary field, `records` (a Buffer of whole record batches), which a transport may
 *   carry as raw bytes. The receiving handler gets an equal object (not necessarily the same
 *   one: `records` may be a different Buffer with the same bytes).
 * - `request` settles exactly once: with the handler's answer, or with a `StrandError`:
 *   the handler's own error with its `code` and message (a non-StrandError arrives as
 *   IO_ERROR), `REQUEST_TIMED_OUT` after `timeoutMs` with no answer, `NODE_UNREACHABLE` when
 *   the node cannot be reached (no address, connection refused or lost), `LOG_CLOSED` after
 *   `close`. A timed-out or failed request may still have been delivered, once or (with a
 *   faulty network) more than once: the protocol above tolerates duplicates and stale answers.
 * - Messages between two nodes need not arrive in order; answers are matched to requests.
 * - A slow or dead node delays only the requests sent to it, never those to other nodes, and
 *   never the caller (requests are asynchronous; an implementation bounds what it buffers
 *   per node and fails the excess with NODE_UNREACHABLE or REQUEST_TIMED_OUT).
 */

import { StrandError } from '../errors.js'

/** A node's number in the cluster: a non-negative integer, unique per process that joins. */
export type NodeId = number

/** What travels: a type tag, JSON fields, and optionally raw record batches. */
export interface Message {
  type: string
  /** Whole record batches, carried as bytes. */
  records?: Buffer
  [field: string]: unknown
}

/** Answers one request from node `from`. May throw (or reject with) a StrandError. */
export type RequestHandler = (from: NodeId, request: Message) => Promise<Message>

export interface Transport {
  /** This node's id: who `from` is at the other end. */
  readonly nodeId: NodeId
  /**
   * Starts answering requests addressed to this node with `handler`. Called once, before any
   * `request`; resolves when requests can arrive (a TCP server is listening).
   */
  serve(handler: RequestHandler): Promise<void>
  /** Sends `message` to node `to` and resolves with the answer (see the contract above). */
  request(to: NodeId, message: Message, timeoutMs: number): Promise<Message>
  /** Stops serving and fails requests in flight with LOG_CLOSED. Idempotent. */
  close(): Promise<void>
}

/** A handler's failure as the requester sees it, over any transport: StrandErrors keep their code. */
export function asStrandError(err: unknown): StrandError {
  if (err instanceof StrandError) return err
  return new StrandError('IO_ERROR', (err as Error)?.message ?? String(err), { cause: err })
}

/** One request in flight, as `trackRequest` makes it. */
export interface TrackedRequest {
  readonly promise: Promise<Message>
  /** Settles the request (the first call wins; later ones do nothing). */
  settle(err: Error | null, answer?: Message): void
  readonly settled: boolean
}

/**
 * The bookkeeping a transport's `request` needs: a promise that settles exactly once, with
 * the answer, an error, or REQUEST_TIMED_OUT after `timeoutMs`; listed in `pending` until
 * then, so that `close` can fail it.
 */
export function trackRequest(pending: Set<(err: Error) => void>, to: NodeId, type: string, timeoutMs: number): TrackedRequest {
  let resolve!: (m: Message) => void
  let reject!: (err: Error) => void
  const promise = new Promise<Message>((res, rej) => { resolve = res; reject = rej })
  const tracked = {
    promise,
    settled: false,
    settle(err: Error | null, answer?: Message): void {
      if (tracked.settled) return
      tracked.settled = true
      clearTimeout(timer)
      pending.delete(fail)
      if (err !== null) reject(err)
      else resolve(answer!)
    },
  }
  const fail = (err: Error): void => tracked.settle(err)
  const timer = setTimeout(() => tracked.settle(new StrandError('REQUEST_TIMED_OUT', `node ${to} did not answer ${type} within ${timeoutMs} ms`)), timeoutMs)
  pending.add(fail)
  return tracked
}
