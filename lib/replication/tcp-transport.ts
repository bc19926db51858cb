/**
 * The TCP transport: `Transport` over node:net, one length-prefixed binary frame per message.
 *
 * Frame (multi-byte integers big-endian, like the rest of strand's formats):
 *
 * | offset | width | field        | notes                                                          |
 * |-------:|------:|--------------|----------------------------------------------------------------|
 * |      0 |     4 | length       | uint32: bytes after this field; 10 ≤ length ≤ `maxFrameBytes` (4096 before the hello) |
 * |      4 |     1 | kind         | 1 hello, 2 request, 3 response, 4 error                         |
 * |      5 |     1 | flags        | bit 0: the message has `records`; other bits zero               |
 * |      6 |     4 | requestId    | uint32, 1…2^32−1, chosen by the requester per connection; 0 in hello |
 * |     10 |     4 | headerLength | uint32, ≤ length − 10                                           |
 * |     14 |     h | header       | UTF-8 JSON object (see below)                                   |
 * | 14 + h |  rest | records      | raw bytes of `records`; present only with flag bit 0 (may be empty) |
 *
 * Headers: hello `{"protocol":"strand","version":1,"nodeId":N}`; request and response: the
 * message without `records` (an object with a string `type`); error `{"code","message"}`.
 * The records travel outside the JSON so that a 1 MiB fetch answer is written as its own
 * Buffer (no copy into a frame, no base64) and read back as one slice or one copy.
 *
 * Connections: the requester opens one connection per peer and sends hello with its node id
 * (the `from` its peer's handler sees); the server answers with its own hello, and only then
 * are requests written (so a request never reaches a process that answered on a stale
 * address as another node). Requests go one way on a connection, answers the other, matched
 * by request id, in any order. Two nodes that both request from each other use two
 * connections. A frame that breaks the rules above closes its connection: a peer that speaks
 * something else is cut off, never trusted further and never a reason to crash.
 */
import net from 'node:net'
import { type ErrorCode, StrandError, closed, describe, invalidArgument } from '../errors.js'
import { type Message, type NodeId, type RequestHandler, type Transport, asStrandError } from './transport.js'

/** Where a peer listens. */
export interface PeerAddress {
  host: string
  port: number
}

/** Looks up a peer's address at each connection attempt; `undefined` when it has none. */
export type PeerResolver = (id: NodeId) => PeerAddress | undefined

export interface TcpTransportOptions {
  /** This node's id: sent in the hello of every connection it opens, so it is the `from` its peers see. */
  nodeId: NodeId
  /** Interface the server listens on. Loopback unless a cluster spans hosts. @default '127.0.0.1' */
  host?: string
  /** Port the server listens on; 0 picks a free one (read it from `port` after `serve`). @default 0 */
  port?: number
  /**
   * Peers' addresses: a Map or a record keyed by node id (copied), or a function asked at each
   * connection attempt. `setPeer` overrides either. @default no peers
   */
  peers?: Map<NodeId, PeerAddress> | Record<number, PeerAddress> | PeerResolver
  /** Time for a connection to be established and the peer's hello to arrive. @default 5000 */
  connectTimeoutMs?: number
  /** Wait after the first failure before the next connection attempt; doubles per failure in a row. @default 50 */
  reconnectBackoffMs?: number
  /** Ceiling of that wait. @default 1000 */
  reconnectBackoffMaxMs?: number
  /** Each wait is scaled by a random factor in [1 − jitter, 1 + jitter], so restarted peers are not hit in lockstep. @default 0.2 */
  reconnectJitter?: number
  /**
   * Requests written to one peer and not yet answered and flushed. Also the number of requests
   * from one incoming connection that are served at once: beyond it, that connection is not
   * read until one is answered. @default 64
   */
  maxInFlight?: number
  /** Requests that may wait per peer (for its connection, or for an in-flight slot) beyond `maxInFlight`; more fail at once with NODE_UNREACHABLE. @default 1024 */
  maxQueued?: number
  /**
   * Largest frame sent or accepted (the `length` field): what a peer can make this node
   * allocate per connection once it said hello (before, frames are limited to 4 KiB). @default 64 MiB
   */
  maxFrameBytes?: number
}

/** The defaults of `TcpTransportOptions`, as documented there (Kafka's reconnect backoff: 50 ms doubling to 1 s). */
export const TCP_TRANSPORT_DEFAULTS: Readonly<Required<Omit<TcpTransportOptions, 'nodeId' | 'peers'>>> = Object.freeze({
  host: '127.0.0.1',
  port: 0,
  connectTimeoutMs: 5000,
  reconnectBackoffMs: 50,
  reconnectBackoffMaxMs: 1000,
  reconnectJitter: 0.2,
  maxInFlight: 64,
  maxQueued: 1024,
  maxFrameBytes: 64 * 1024 * 1024,
})

type Settings = Required<Omit<TcpTransportOptions, 'nodeId' | 'peers'>>

const KIND_HELLO = 1
const KIND_REQUEST = 2
const KIND_RESPONSE = 3
const KIND_ERROR = 4
const FLAG_RECORDS = 1
/** kind, flags, requestId, headerLength: the part of the frame after `length` before the header. */
const HEAD_BYTES = 10
const PREFIX_BYTES = 4
const PROTOCOL = 'strand'
const VERSION = 1
/** An error frame's message is cut to this, so that it fits the smallest allowed `maxFrameBytes`. */
const MAX_ERROR_MESSAGE = 1000
/** A read into a fresh buffer asks for this much (Node's own read size). */
const READ_CHUNK_BYTES = 64 * 1024
/** So small that a hello or an error frame always fits. */
const MIN_FRAME_BYTES = 4096
/** Largest `setTimeout` delay Node honours. */
const MAX_TIMER_MS = 2 ** 31 - 1
/** TCP keepalive probes start after this much silence: a peer whose host vanished without a RST is eventually noticed even with no request outstanding. */
const KEEPALIVE_MS = 10_000

/** One request, from `request` until it settles. */
interface Call {
  peer: Peer
  type: string
  timeoutMs: number
  /** The frame up to the records; its requestId is filled in when it is written. */
  head: Buffer
  records: Buffer | undefined
  resolve: (answer: Message) => void
  reject: (err: Error) => void
  timer: NodeJS.Timeout | undefined
  /** Set once written; null while queued. */
  conn: Outgoing | null
  id: number
  /** The socket took the bytes: they no longer occupy its buffer. */
  flushed: boolean
  settled: boolean
}

/** What this node knows about one peer it requests from. */
interface Peer {
  id: NodeId
  /** The current connection (connecting or ready), or null. Null ⇒ `queue` is empty. */
  conn: Outgoing | null
  /** Requests waiting for `conn` to be ready or for a slot, oldest first. */
  queue: Set<Call>
  /** Connection failures since the last successful hello. */
  failures: number
  /** No connection attempt before this time (performance.now()); requests meanwhile fail. */
  retryAt: number
  lastError: string
}

/** A connection this node opened to a peer. */
interface Outgoing {
  peer: Peer
  socket: net.Socket
  address: string
  /** The peer's hello arrived: requests may be written. */
  ready: boolean
  dead: boolean
  /** Written and unanswered, by request id. */
  calls: Map<number, Call>
  /** Calls written that are unanswered or unflushed: what `maxInFlight` bounds. */
  slots: number
  nextId: number
  timer: NodeJS.Timeout | undefined
  reader: FrameReader
}

/** A connection a peer opened to this node's server. */
interface Incoming {
  socket: net.Socket
  /** The peer's node id once its hello arrived, -1 before. */
  from: NodeId
  dead: boolean
  /** Requests handed to the handler whose answer is not yet flushed. */
  active: number
  /** Requests read while `active` was at `maxInFlight`; the socket is paused while any wait. */
  backlog: Array<{ id: number, message: Message }>
  timer: NodeJS.Timeout | undefined
  reader: FrameReader
}

interface Frame {
  kind: number
  id: number
  header: Record<string, unknown>
  records: Buffer | undefined
}

/**
 * `Transport` over TCP (see the frame table above).
 *
 * Invariants:
 * - At most one outgoing connection per peer; it is opened by the first request that needs
 *   it, never in the background, so an idle or removed peer costs nothing.
 * - Per peer, at most `maxInFlight` requests are written and not both answered (or timed out)
 *   and flushed, and at most `maxInFlight + maxQueued` are outstanding in all (while the
 *   connection is being opened, all of them wait); the next fails at once with
 *   NODE_UNREACHABLE. So the bytes buffered for a slow peer are bounded, and the caller's
 *   Buffers are referenced, never copied. A queued request waits within its own timeout.
 * - A request that times out does not close the connection (a long-polling fetch and a slow
 *   handler look alike); a dead connection is noticed by the socket (RST, FIN, keepalive).
 * - Unreachable semantics: a request to a peer with no connection starts one and waits for
 *   it (within its own timeout); when the attempt fails, or an established connection is
 *   lost, every request written or queued on it fails with NODE_UNREACHABLE, and the peer is
 *   in backoff (`reconnectBackoffMs` doubling per failure in a row up to
 *   `reconnectBackoffMaxMs`, jittered). Requests during backoff fail at once with
 *   NODE_UNREACHABLE and do not connect: callers that retry must pace themselves. A
 *   successful hello ends the backoff; `setPeer` with a new address ends it too.
 * - A request settles exactly once; answers to requests that already settled (timed out) are
 *   dropped. A request that failed may still have been delivered.
 * - Per incoming connection, at most `maxInFlight` requests are being handled or having their
 *   answer flushed; beyond that the socket is paused (TCP pushes back on the requester).
 * - After `close()` nothing is open: no server, no socket, no timer.
 */
export class TcpTransport implements Transport {
  readonly nodeId: NodeId
  #settings: Settings
  /** Addresses from the `peers` option and `setPeer`; consulted before `#resolver`. */
  #addresses = new Map<NodeId, PeerAddress>()
  #resolver: PeerResolver | null = null
  #peers = new Map<NodeId, Peer>()
  #server: net.Server | null = null
  #handler: RequestHandler | null = null
  #incoming = new Set<Incoming>()
  #port: number
  #hello: Buffer
  #closed = false
  #closing: Promise<void> | null = null
  /** One function for every request timer (the call is the timer's argument): no closure per request. */
  #onTimeout = (call: Call): void => {
    this.#settle(call, new StrandError('REQUEST_TIMED_OUT', `node ${call.peer.id} did not answer ${call.type} within ${call.timeoutMs} ms`))
  }

  constructor(options: TcpTransportOptions) {
    if (typeof options !== 'object' || options === null) throw invalidArgument('options', 'an object', options)
    if (!isNodeId(options.nodeId)) throw invalidArgument('nodeId', 'an integer >= 0', options.nodeId)
    this.nodeId = options.nodeId
    const s: Settings = { ...TCP_TRANSPORT_DEFAULTS }
    for (const key of Object.keys(TCP_TRANSPORT_DEFAULTS) as Array<keyof Settings>) {
      if (options[key] !== undefined) (s as Record<string, unknown>)[key] = options[key]
    }
    if (typeof s.host !== 'string' || s.host === '') throw invalidArgument('host', 'a non-empty string', s.host)
    checkInt('port', s.port, 0, 65535)
    checkInt('connectTimeoutMs', s.connectTimeoutMs, 1, MAX_TIMER_MS)
    checkInt('reconnectBackoffMs', s.reconnectBackoffMs, 0, MAX_TIMER_MS)
    checkInt('reconnectBackoffMaxMs', s.reconnectBackoffMaxMs, s.reconnectBackoffMs, MAX_TIMER_MS)
    if (typeof s.reconnectJitter !== 'number' || !(s.reconnectJitter >= 0 && s.reconnectJitter <= 1)) {
      throw invalidArgument('reconnectJitter', 'a number in [0, 1]', s.reconnectJitter)
    }
    checkInt('maxInFlight', s.maxInFlight, 1, 2 ** 20)
    checkInt('maxQueued', s.maxQueued, 0, 2 ** 24)
    checkInt('maxFrameBytes', s.maxFrameBytes, MIN_FRAME_BYTES, MAX_TIMER_MS)
    this.#settings = Object.freeze(s)
    this.#port = s.port

    const peers = options.peers
    if (typeof peers === 'function') {
      this.#resolver = peers
    } else if (peers instanceof Map) {
      for (const [id, address] of peers) this.#addresses.set(checkPeer(id, address), { host: address.host, port: address.port })
    } else if (typeof peers === 'object' && peers !== null) {
      for (const [key, address] of Object.entries(peers)) this.#addresses.set(checkPeer(Number(key), address), { host: address.host, port: address.port })
    } else if (peers !== undefined) {
      throw invalidArgument('peers', 'a Map, a record of node id to { host, port }, or a function', peers)
    }
    this.#hello = encodeHead(KIND_HELLO, 0, 0, JSON.stringify({ protocol: PROTOCOL, version: VERSION, nodeId: this.nodeId }), 0)
  }

  /** The port the server listens on: the bound one once `serve()` resolved (0 becomes a real port), the configured one before. */
  get port(): number {
    return this.#port
  }

  /**
   * Sets (or changes) node `id`'s address; takes precedence over the `peers` option. A new
   * address ends any backoff (a restarted peer on a new port is tried at the next request)
   * and drops the connection to the old one: requests written on it fail with
   * NODE_UNREACHABLE, queued ones go to the new address. The same address again changes
   * nothing, so re-announcing addresses does not defeat the backoff.
   */
  setPeer(id: NodeId, address: PeerAddress): void {
    checkPeer(id, address)
    const copy = { host: address.host, port: address.port }
    const now = formatAddress(copy)
    const peer = this.#peers.get(id)
    const known = this.#addressOf(id)
    // The address in use is the connection's, else the one the next attempt would have used.
    const previous = peer?.conn?.address ?? (typeof known === 'string' ? null : formatAddress(known))
    this.#addresses.set(id, copy)
    if (peer === undefined || previous === now) return
    peer.failures = 0
    peer.retryAt = 0
    const conn = peer.conn
    if (conn === null) return
    // Detach first, so that killing the old connection fails only what was written on it.
    peer.conn = null
    this.#kill(conn, () => unreachable(id, `${conn.address}: its address changed to ${now}`))
    if (peer.queue.size > 0 && !this.#closed) this.#connect(peer, copy)
  }

  async serve(handler: RequestHandler): Promise<void> {
    if (this.#closed) throw closed(this.#what())
    if (typeof handler !== 'function') throw invalidArgument('handler', 'a function', handler)
    if (this.#server !== null) throw new StrandError('INVALID_ARGUMENT', `node ${this.nodeId} already serves`)
    const server = net.createServer((socket) => this.#accept(socket))
    this.#server = server
    this.#handler = handler
    const { host, port } = this.#settings
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen(port, host, () => {
          server.off('error', reject)
          resolve()
        })
      })
    } catch (err) {
      this.#server = null
      this.#handler = null
      throw new StrandError('IO_ERROR', `node ${this.nodeId} cannot listen on ${host}:${port}: ${(err as Error).message}`, { cause: err })
    }
    // accept(2) failures (EMFILE…) are the OS's momentary trouble, not a reason to crash the process.
    server.on('error', () => {})
    this.#port = (server.address() as net.AddressInfo).port
    if (this.#closed) {
      // close() ran while we were binding: it could not see the listening server yet.
      server.close()
      throw closed(this.#what())
    }
  }

  request(to: NodeId, message: Message, timeoutMs: number): Promise<Message> {
    if (this.#closed) return Promise.reject(closed(this.#what()))
    if (!isNodeId(to)) return Promise.reject(invalidArgument('to', 'a node id (an integer >= 0)', to))
    if (typeof timeoutMs !== 'number' || !(timeoutMs > 0 && timeoutMs <= MAX_TIMER_MS)) {
      return Promise.reject(invalidArgument('timeoutMs', `a number in (0, ${MAX_TIMER_MS}]`, timeoutMs))
    }
    let head: Buffer
    try {
      head = this.#encodeMessage(KIND_REQUEST, 0, message, 'message')
    } catch (err) {
      return Promise.reject(err)
    }

    let peer = this.#peers.get(to)
    if (peer === undefined) {
      peer = { id: to, conn: null, queue: new Set(), failures: 0, retryAt: 0, lastError: '' }
      this.#peers.set(to, peer)
    }
    if (peer.conn === null) {
      const wait = peer.retryAt - performance.now()
      if (wait > 0) return Promise.reject(unreachable(to, `${peer.lastError} (next attempt in ${Math.ceil(wait)} ms)`))
      const address = this.#addressOf(to)
      if (typeof address === 'string') return Promise.reject(unreachable(to, address))
      this.#connect(peer, address)
    }
    const conn = peer.conn!
    const { maxInFlight, maxQueued } = this.#settings
    const sendNow = conn.ready && conn.slots < maxInFlight && peer.queue.size === 0
    // While connecting every request queues, so the bound is on the total: what the slots
    // would hold once ready plus what may wait behind them.
    if (!sendNow && conn.slots + peer.queue.size >= maxInFlight + maxQueued) {
      return Promise.reject(unreachable(to, `${conn.slots} requests in flight and ${peer.queue.size} waiting (maxInFlight ${maxInFlight} + maxQueued ${maxQueued})`))
    }
    return new Promise<Message>((resolve, reject) => {
      const call: Call = {
        peer: peer!, type: message.type, timeoutMs, head, records: message.records, resolve, reject,
        timer: undefined, conn: null, id: 0, flushed: false, settled: false,
      }
      call.timer = setTimeout(this.#onTimeout, timeoutMs, call)
      if (sendNow) this.#send(conn, call)
      else peer!.queue.add(call)
    })
  }

  close(): Promise<void> {
    this.#closing ??= this.#close()
    return this.#closing
  }

  async #close(): Promise<void> {
    this.#closed = true
    const err = () => closed(this.#what())
    for (const peer of this.#peers.values()) {
      if (peer.conn !== null) this.#kill(peer.conn, err)
      this.#failQueue(peer, err)
    }
    for (const conn of this.#incoming) this.#dropIncoming(conn)
    const server = this.#server
    if (server !== null && server.listening) await new Promise<void>((resolve) => server.close(() => resolve()))
  }

  #what(): string {
    return `transport of node ${this.nodeId}`
  }

  // --- requesting ------------------------------------------------------------------------------

  /** The address to connect to, or why there is none. */
  #addressOf(id: NodeId): PeerAddress | string {
    let address: PeerAddress | undefined
    try {
      address = this.#addresses.get(id) ?? this.#resolver?.(id)
    } catch (err) {
      return `its address could not be resolved: ${(err as Error)?.message ?? String(err)}`
    }
    if (address === undefined) return 'it has no address'
    if (!isAddress(address)) return `its resolver gave ${describe(address)}, not { host, port }`
    return address
  }

  #connect(peer: Peer, address: PeerAddress): void {
    // Answers are read straight into the frame being assembled (see FrameReader.target).
    const reader = new FrameReader((body) => this.#onAnswer(conn, body))
    const onread = {
      buffer: () => reader.target(),
      callback: (n: number, buf: Uint8Array): boolean => {
        const problem = reader.received(buf as Buffer, n)
        if (problem !== null) this.#lost(conn, `malformed frame: ${problem}`)
        return true
      },
    }
    const socket = net.connect({ host: address.host, port: address.port, noDelay: true, keepAlive: true, keepAliveInitialDelay: KEEPALIVE_MS, onread })
    const conn: Outgoing = {
      peer, socket, address: formatAddress(address), ready: false, dead: false,
      calls: new Map(), slots: 0, nextId: 1, timer: undefined, reader,
    }
    peer.conn = conn
    conn.timer = setTimeout(() => this.#lost(conn, `no hello within ${this.#settings.connectTimeoutMs} ms (connectTimeoutMs)`), this.#settings.connectTimeoutMs)
    socket.on('connect', () => socket.write(this.#hello))
    socket.on('error', (err) => this.#lost(conn, err.message))
    socket.on('close', () => this.#lost(conn, conn.ready ? 'connection lost' : 'connection closed before hello'))
  }

  /** Handles one frame from a peer's server; false stops reading the chunk (the connection is gone). */
  #onAnswer(conn: Outgoing, body: Buffer): boolean {
    if (conn.dead) return false
    const frame = decodeFrame(body)
    if (typeof frame === 'string') return this.#lost(conn, `malformed frame: ${frame}`)
    if (!conn.ready) {
      if (frame.kind !== KIND_HELLO) return this.#lost(conn, `expected hello, got a frame of kind ${frame.kind}`)
      const problem = checkHello(frame.header)
      if (problem !== null) return this.#lost(conn, problem)
      if (frame.header.nodeId !== conn.peer.id) return this.#lost(conn, `the server there is node ${frame.header.nodeId}`)
      conn.ready = true
      conn.reader.max = this.#settings.maxFrameBytes
      clearTimeout(conn.timer)
      conn.peer.failures = 0
      this.#pump(conn.peer)
      return true
    }
    if (frame.kind === KIND_RESPONSE) {
      const problem = checkMessage(frame.header)
      if (problem !== null) return this.#lost(conn, `malformed response: ${problem}`)
      const call = conn.calls.get(frame.id)
      // No call: it timed out (or was never sent); its answer is dropped, per the contract.
      if (call !== undefined) this.#settle(call, null, toMessage(frame))
      return true
    }
    if (frame.kind === KIND_ERROR) {
      const { code, message } = frame.header
      if (typeof code !== 'string' || typeof message !== 'string') return this.#lost(conn, 'malformed error frame: no string code and message')
      const call = conn.calls.get(frame.id)
      if (call !== undefined) this.#settle(call, new StrandError(code as ErrorCode, message))
      return true
    }
    return this.#lost(conn, `unexpected frame of kind ${frame.kind} from a server`)
  }

  #send(conn: Outgoing, call: Call): void {
    let id = conn.nextId
    while (conn.calls.has(id)) id = id === 0xffffffff ? 1 : id + 1
    conn.nextId = id === 0xffffffff ? 1 : id + 1
    call.id = id
    call.conn = conn
    conn.calls.set(id, call)
    conn.slots++
    call.head.writeUInt32BE(id, 6)
    writeFrame(conn.socket, call.head, call.records, () => this.#flushed(call))
  }

  #flushed(call: Call): void {
    call.flushed = true
    if (call.settled) this.#release(call.conn!)
  }

  #release(conn: Outgoing): void {
    conn.slots--
    if (!conn.dead) this.#pump(conn.peer)
  }

  /** Writes queued requests while the connection is ready and has slots. */
  #pump(peer: Peer): void {
    const conn = peer.conn
    if (conn === null || !conn.ready) return
    const max = this.#settings.maxInFlight
    for (const call of peer.queue) {
      if (conn.slots >= max) break
      peer.queue.delete(call)
      this.#send(conn, call)
    }
  }

  #settle(call: Call, err: Error | null, answer?: Message): void {
    if (call.settled) return
    call.settled = true
    clearTimeout(call.timer)
    const conn = call.conn
    if (conn === null) {
      call.peer.queue.delete(call)
    } else {
      conn.calls.delete(call.id)
      if (call.flushed) this.#release(conn)
    }
    if (err !== null) call.reject(err)
    else call.resolve(answer!)
  }

  /** The connection failed or was lost: the peer enters backoff and its requests fail. Returns false (for `#onAnswer`). */
  #lost(conn: Outgoing, reason: string): boolean {
    if (conn.dead) return false
    const peer = conn.peer
    const detail = `${conn.address}: ${reason}`
    const current = peer.conn === conn
    if (current) {
      peer.conn = null
      peer.failures++
      const s = this.#settings
      const base = Math.min(s.reconnectBackoffMaxMs, s.reconnectBackoffMs * 2 ** Math.min(peer.failures - 1, 30))
      peer.retryAt = performance.now() + base * (1 - s.reconnectJitter + 2 * s.reconnectJitter * Math.random())
      peer.lastError = detail
    }
    const err = () => unreachable(peer.id, detail)
    this.#kill(conn, err)
    // Queued requests were waiting for this connection; there is none now, and backoff forbids another.
    if (current) this.#failQueue(peer, err)
    return false
  }

  /** Closes the connection and fails what was written on it. */
  #kill(conn: Outgoing, err: () => StrandError): void {
    conn.dead = true
    clearTimeout(conn.timer)
    conn.socket.destroy()
    for (const call of [...conn.calls.values()]) this.#settle(call, err())
  }

  #failQueue(peer: Peer, err: () => StrandError): void {
    for (const call of [...peer.queue]) this.#settle(call, err())
  }

  // --- serving ---------------------------------------------------------------------------------

  #accept(socket: net.Socket): void {
    if (this.#closed) {
      socket.destroy()
      return
    }
    socket.setNoDelay(true)
    socket.setKeepAlive(true, KEEPALIVE_MS)
    const conn: Incoming = {
      socket, from: -1, dead: false, active: 0, backlog: [], timer: undefined,
      reader: new FrameReader((body) => this.#onRequest(conn, body)),
    }
    this.#incoming.add(conn)
    // A connection that never says hello would otherwise be held open forever.
    conn.timer = setTimeout(() => this.#dropIncoming(conn), this.#settings.connectTimeoutMs)
    socket.on('data', (chunk: Buffer) => {
      if (conn.reader.push(chunk) !== null) this.#dropIncoming(conn)
    })
    socket.on('error', () => this.#dropIncoming(conn))
    socket.on('close', () => this.#dropIncoming(conn))
  }

  #onRequest(conn: Incoming, body: Buffer): boolean {
    if (conn.dead) return false
    const frame = decodeFrame(body)
    if (typeof frame === 'string') return this.#dropIncoming(conn)
    if (conn.from < 0) {
      if (frame.kind !== KIND_HELLO || checkHello(frame.header) !== null) return this.#dropIncoming(conn)
      conn.from = frame.header.nodeId as NodeId
      conn.reader.max = this.#settings.maxFrameBytes
      clearTimeout(conn.timer)
      conn.socket.write(this.#hello)
      return true
    }
    if (frame.kind !== KIND_REQUEST || checkMessage(frame.header) !== null) return this.#dropIncoming(conn)
    const message = toMessage(frame)
    if (conn.active >= this.#settings.maxInFlight) {
      conn.backlog.push({ id: frame.id, message })
      conn.socket.pause()
    } else {
      this.#handle(conn, frame.id, message)
    }
    return true
  }

  #handle(conn: Incoming, id: number, message: Message): void {
    conn.active++
    let answer: Promise<Message>
    try {
      answer = Promise.resolve(this.#handler!(conn.from, message))
    } catch (err) {
      answer = Promise.reject(err)
    }
    answer.then((a) => this.#answer(conn, id, a), (err) => this.#answerError(conn, id, asStrandError(err)))
  }

  #answer(conn: Incoming, id: number, answer: Message): void {
    if (conn.dead) return
    let head: Buffer
    try {
      head = this.#encodeMessage(KIND_RESPONSE, id, answer, 'answer')
    } catch (err) {
      const e = err as StrandError
      this.#answerError(conn, id, e.code === 'RECORD_TOO_LARGE' ? e : new StrandError('IO_ERROR', `the handler's answer cannot be sent: ${e.message}`))
      return
    }
    writeFrame(conn.socket, head, answer.records, () => this.#served(conn))
  }

  #answerError(conn: Incoming, id: number, err: StrandError): void {
    if (conn.dead) return
    const message = err.message.length > MAX_ERROR_MESSAGE ? err.message.slice(0, MAX_ERROR_MESSAGE) + '…' : err.message
    writeFrame(conn.socket, encodeHead(KIND_ERROR, 0, id, JSON.stringify({ code: err.code, message }), 0), undefined, () => this.#served(conn))
  }

  /** An answer left the socket's buffer: serve the next waiting request, and read again once none wait. */
  #served(conn: Incoming): void {
    conn.active--
    if (conn.dead) return
    while (conn.active < this.#settings.maxInFlight && conn.backlog.length > 0) {
      const next = conn.backlog.shift()!
      this.#handle(conn, next.id, next.message)
    }
    if (conn.backlog.length === 0 && conn.socket.isPaused()) conn.socket.resume()
  }

  /** Closes an incoming connection (bad frame, no hello, peer gone, close()); answers still being computed are dropped. */
  #dropIncoming(conn: Incoming): boolean {
    if (conn.dead) return false
    conn.dead = true
    clearTimeout(conn.timer)
    conn.backlog.length = 0
    conn.socket.destroy()
    this.#incoming.delete(conn)
    return false
  }

  /** The frame up to the records for `message`; throws INVALID_ARGUMENT or RECORD_TOO_LARGE. */
  #encodeMessage(kind: number, id: number, message: Message, name: string): Buffer {
    if (typeof message !== 'object' || message === null) throw invalidArgument(name, 'a message object', message)
    if (typeof message.type !== 'string') throw invalidArgument(`${name}.type`, 'a string', message.type)
    const records = message.records
    if (records !== undefined && !Buffer.isBuffer(records)) throw invalidArgument(`${name}.records`, 'a Buffer or undefined', records)
    let json: string
    try {
      if (records === undefined) {
        json = JSON.stringify(message)
      } else {
        const { records: _, ...rest } = message
        json = JSON.stringify(rest)
      }
    } catch (err) {
      throw new StrandError('INVALID_ARGUMENT', `Expected \`${name}\` to have JSON-serialisable fields: ${(err as Error).message}`, { cause: err })
    }
    const recordsLength = records?.length ?? 0
    const length = HEAD_BYTES + Buffer.byteLength(json) + recordsLength
    if (length > this.#settings.maxFrameBytes) {
      throw new StrandError('RECORD_TOO_LARGE', `${message.type} with ${recordsLength} bytes of records is a frame of ${length} bytes, more than maxFrameBytes (${this.#settings.maxFrameBytes})`)
    }
    return encodeHead(kind, records === undefined ? 0 : FLAG_RECORDS, id, json, recordsLength)
  }
}

/**
 * Splits a byte stream into frame bodies (everything after `length`). A frame inside one chunk
 * is handed on as a slice of it (its records keep that chunk, at most 64 KiB, alive while
 * they are referenced); one that spans chunks goes into a Buffer of its exact size allocated
 * when its length is known, which is the case for every large fetch answer. `push` copies a
 * chunk's bytes into it; a socket that reads through `target`/`received` (node:net's `onread`,
 * as outgoing connections do) has the kernel write the rest of the frame there directly, so
 * a fetch answer is not copied once more in this process.
 */
class FrameReader {
  /** Largest frame accepted now: MIN_FRAME_BYTES until the hello arrives, then `maxFrameBytes`. */
  max: number = MIN_FRAME_BYTES
  #onFrame: (body: Buffer) => boolean
  #prefix = Buffer.alloc(PREFIX_BYTES)
  #prefixFilled = 0
  #partial: Buffer | null = null
  #filled = 0
  /** The last buffer `target` handed out, and whether it is the rest of `#partial`. */
  #target: Buffer | null = null
  #targetIsPartial = false

  /** `onFrame` returns false when the connection is gone and the rest should be ignored. */
  constructor(onFrame: (body: Buffer) => boolean) {
    this.#onFrame = onFrame
  }

  /**
   * Where a socket with `onread` should read next: the unfilled rest of a frame being
   * assembled, so that a large answer lands in its own buffer without a copy, or else a new
   * chunk (its frames are handed on as slices of it, so it is never reused).
   */
  target(): Buffer {
    this.#targetIsPartial = this.#partial !== null
    this.#target = this.#partial !== null ? this.#partial.subarray(this.#filled) : Buffer.allocUnsafe(READ_CHUNK_BYTES)
    return this.#target
  }

  /** `n` bytes were read into `buf`, the last buffer `target` returned. */
  received(buf: Buffer, n: number): string | null {
    if (!this.#targetIsPartial || buf !== this.#target) return this.push(buf.subarray(0, n))
    this.#filled += n
    if (this.#filled < this.#partial!.length) return null
    const body = this.#partial!
    this.#partial = null
    this.#onFrame(body)
    return null
  }

  /** Consumes a chunk; returns what is wrong with the stream, or null. */
  push(chunk: Buffer): string | null {
    const n = chunk.length
    let off = 0
    while (off < n) {
      if (this.#partial !== null) {
        const take = Math.min(this.#partial.length - this.#filled, n - off)
        chunk.copy(this.#partial, this.#filled, off, off + take)
        this.#filled += take
        off += take
        if (this.#filled < this.#partial.length) return null
        const body = this.#partial
        this.#partial = null
        if (!this.#onFrame(body)) return null
        continue
      }
      let length: number
      if (this.#prefixFilled > 0 || n - off < PREFIX_BYTES) {
        const take = Math.min(PREFIX_BYTES - this.#prefixFilled, n - off)
        chunk.copy(this.#prefix, this.#prefixFilled, off, off + take)
        this.#prefixFilled += take
        off += take
        if (this.#prefixFilled < PREFIX_BYTES) return null
        this.#prefixFilled = 0
        length = this.#prefix.readUInt32BE(0)
      } else {
        length = chunk.readUInt32BE(off)
        off += PREFIX_BYTES
      }
      if (length < HEAD_BYTES || length > this.max) return `frame length ${length} outside [${HEAD_BYTES}, ${this.max}]`
      if (n - off >= length) {
        const body = chunk.subarray(off, off + length)
        off += length
        if (!this.#onFrame(body)) return null
      } else {
        this.#partial = Buffer.allocUnsafe(length)
        this.#filled = 0
      }
    }
    return null
  }
}

/**
 * Writes a frame: its head, then the caller's records Buffer as it is (never copied into the
 * frame). The socket stays corked until the end of the tick, so the frames written in one
 * tick (a burst of requests, the answers to one chunk of requests, head and records) leave
 * in one writev instead of a syscall each.
 */
function writeFrame(socket: net.Socket, head: Buffer, records: Buffer | undefined, onFlushed: () => void): void {
  if (socket.writableCorked === 0) {
    socket.cork()
    process.nextTick(uncork, socket)
  }
  if (records !== undefined && records.length > 0) {
    socket.write(head)
    socket.write(records, onFlushed)
  } else {
    socket.write(head, onFlushed)
  }
}

function uncork(socket: net.Socket): void {
  socket.uncork()
}

function encodeHead(kind: number, flags: number, id: number, json: string, recordsLength: number): Buffer {
  const jsonBytes = Buffer.byteLength(json)
  const head = Buffer.allocUnsafe(PREFIX_BYTES + HEAD_BYTES + jsonBytes)
  head.writeUInt32BE(HEAD_BYTES + jsonBytes + recordsLength, 0)
  head[4] = kind
  head[5] = flags
  head.writeUInt32BE(id, 6)
  head.writeUInt32BE(jsonBytes, 10)
  head.write(json, PREFIX_BYTES + HEAD_BYTES, 'utf8')
  return head
}

/** A frame body's fields, or what is wrong with it. */
function decodeFrame(body: Buffer): Frame | string {
  const kind = body[0]
  const flags = body[1]
  if (kind < KIND_HELLO || kind > KIND_ERROR) return `unknown kind ${kind}`
  if ((flags & ~FLAG_RECORDS) !== 0) return `reserved flag bits set (${flags})`
  const id = body.readUInt32BE(2)
  const headerLength = body.readUInt32BE(6)
  if (headerLength > body.length - HEAD_BYTES) return `header length ${headerLength} beyond the frame's ${body.length} bytes`
  const headerEnd = HEAD_BYTES + headerLength
  if ((flags & FLAG_RECORDS) === 0 && headerEnd !== body.length) return `${body.length - headerEnd} bytes after the header without the records flag`
  let header: unknown
  try {
    header = JSON.parse(body.toString('utf8', HEAD_BYTES, headerEnd))
  } catch {
    return 'header is not JSON'
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) return 'header is not a JSON object'
  return { kind, id, header: header as Record<string, unknown>, records: (flags & FLAG_RECORDS) !== 0 ? body.subarray(headerEnd) : undefined }
}

function checkHello(header: Record<string, unknown>): string | null {
  if (header.protocol !== PROTOCOL || header.version !== VERSION) return `hello of protocol ${describe(header.protocol)} version ${describe(header.version)}, not ${PROTOCOL} ${VERSION}`
  if (!isNodeId(header.nodeId)) return `hello with node id ${describe(header.nodeId)}`
  return null
}

function checkMessage(header: Record<string, unknown>): string | null {
  if (typeof header.type !== 'string') return 'no string type'
  // `records` travels only as raw bytes; a header claiming it could smuggle a non-Buffer.
  if (Object.hasOwn(header, 'records')) return 'records inside the JSON header'
  return null
}

function toMessage(frame: Frame): Message {
  const message = frame.header as Message
  if (frame.records !== undefined) message.records = frame.records
  return message
}

function unreachable(id: NodeId, reason: string): StrandError {
  return new StrandError('NODE_UNREACHABLE', `node ${id} is unreachable: ${reason}`)
}

function isNodeId(value: unknown): value is NodeId {
  return Number.isSafeInteger(value) && (value as number) >= 0
}

function isAddress(value: unknown): value is PeerAddress {
  if (typeof value !== 'object' || value === null) return false
  const { host, port } = value as PeerAddress
  return typeof host === 'string' && host !== '' && Number.isInteger(port) && port >= 1 && port <= 65535
}

function formatAddress(address: PeerAddress): string {
  return address.host.includes(':') ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`
}

function checkPeer(id: unknown, address: unknown): NodeId {
  if (!isNodeId(id)) throw invalidArgument('peer id', 'an integer >= 0', id)
  if (!isAddress(address)) throw invalidArgument(`address of node ${id}`, '{ host: a non-empty string, port: an integer in [1, 65535] }', address)
  return id
}

function checkInt(name: string, value: unknown, min: number, max: number): void {
  if (!Number.isInteger(value) || (value as number) < min || (value as number) > max) {
    throw invalidArgument(name, `an integer in [${min}, ${max}]`, value)
  }
}
