/**
 * TcpTransport over real loopback sockets (127.0.0.1 only): round trips of JSON fields and
 * raw records, matching of out-of-order answers, handler errors, timeouts, unreachable peers
 * and reconnection, per-peer bounds, malformed frames from raw sockets, close(), and nodes in
 * other processes that are killed and restarted. Every wait is bounded; no test looks at a
 * duration, only at outcomes.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import net from 'node:net'
import { fileURLToPath } from 'node:url'
import { StrandError } from '../../lib/errors.js'
import type { Message, NodeId, RequestHandler } from '../../lib/replication/transport.js'
import { TCP_TRANSPORT_DEFAULTS, TcpTransport, type TcpTransportOptions } from '../../lib/replication/tcp-transport.js'
import { type Child, bounded, killHard, rng, spawnChild, waitForLine, expectCode } from '../helpers.js'

const PEER = fileURLToPath(new URL('../fixtures/tcp-peer.ts', import.meta.url))
const CLOSE_EXIT = fileURLToPath(new URL('../fixtures/tcp-close-exit.ts', import.meta.url))
/** Bound on any single wait; generous, since the suite may share the machine. */
const WAIT_MS = 20_000
/** Timeout for requests that are expected to settle some other way first. */
const LONG_MS = 120_000
const LOCAL = '127.0.0.1'

const open: TcpTransport[] = []
const unhandled: unknown[] = []
process.on('unhandledRejection', (reason) => { unhandled.push(reason) })

/**
 * A uvu test that closes the transports it opened and then fails if any promise was left
 * rejected unhandled. (Not an after.each hook: uvu hides the report of a failing hook.)
 */
function it(name: string, fn: () => Promise<void>): void {
  test(name, async () => {
    try {
      await fn()
    } finally {
      await Promise.all(open.splice(0).map((t) => t.close()))
    }
    // Lets a dropped late answer or a settled timer surface as an unhandled rejection here.
    await new Promise((resolve) => setImmediate(resolve))
    assert.equal(unhandled.splice(0), [], 'unhandled rejections')
  })
}

function transport(options: TcpTransportOptions): TcpTransport {
  const t = new TcpTransport(options)
  open.push(t)
  return t
}

/** A served transport for node `id`. */
async function server(id: NodeId, handler: RequestHandler, options: Partial<TcpTransportOptions> = {}): Promise<TcpTransport> {
  const t = transport({ nodeId: id, ...options })
  await t.serve(handler)
  return t
}

/** A transport for node `id` that knows where `peers` are. */
function client(id: NodeId, peers: TcpTransport[], options: Partial<TcpTransportOptions> = {}): TcpTransport {
  return transport({ nodeId: id, peers: new Map(peers.map((p) => [p.nodeId, { host: LOCAL, port: p.port }])), ...options })
}

const echo: RequestHandler = async (from, request) => ({ ...request, from })


/** Resolves once `cond()` holds, polling; fails after WAIT_MS. */
async function until(cond: () => boolean, what: string): Promise<void> {
  await bounded((async () => { while (!cond()) await new Promise((resolve) => setTimeout(resolve, 5)) })(), WAIT_MS, what)
}

/** A port on 127.0.0.1 with nothing listening (bound, then released). */
async function freePort(): Promise<number> {
  const s = net.createServer()
  await new Promise<void>((resolve) => s.listen(0, LOCAL, resolve))
  const port = (s.address() as net.AddressInfo).port
  await new Promise<void>((resolve) => s.close(() => resolve()))
  return port
}

/** A frame built by hand from the table in tcp-transport.ts, independently of its encoder. */
function frame(kind: number, id: number, header: unknown, records?: Buffer): Buffer {
  const json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header))
  const head = Buffer.alloc(14)
  head.writeUInt32BE(10 + json.length + (records?.length ?? 0), 0)
  head[4] = kind
  head[5] = records === undefined ? 0 : 1
  head.writeUInt32BE(id, 6)
  head.writeUInt32BE(json.length, 10)
  return Buffer.concat([head, json, records ?? Buffer.alloc(0)])
}

const hello = (nodeId: number) => frame(1, 0, { protocol: 'strand', version: 1, nodeId })

/** A raw socket to `port`, collecting what it receives; `closed` resolves when the server closes it. */
async function rawSocket(port: number): Promise<{ socket: net.Socket, received: () => Buffer, closed: Promise<void> }> {
  const socket = net.connect({ host: LOCAL, port })
  const chunks: Buffer[] = []
  socket.on('data', (c: Buffer) => chunks.push(c))
  socket.on('error', () => {})
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()))
  await bounded(new Promise<void>((resolve) => socket.once('connect', () => resolve())), WAIT_MS, 'raw connect')
  return { socket, received: () => Buffer.concat(chunks), closed }
}

// --- round trips ---------------------------------------------------------------------------

it('a message with JSON fields and a 5 MiB records Buffer arrives byte for byte, from the sender\'s id, and so does the answer', async () => {
  const records = Buffer.alloc(5 * 1024 * 1024)
  const random = rng(1)
  for (let i = 0; i < records.length; i++) records[i] = Math.floor(random() * 256)
  const answerRecords = Buffer.from(records).reverse()
  let seen: { from: NodeId, request: Message } | undefined
  const b = await server(2, async (from, request) => {
    seen = { from, request }
    return { type: 'fetched', highWatermark: 42, partitions: [{ topic: 't', partition: 0 }], records: answerRecords }
  })
  const a = client(7, [b])
  const answer = await bounded(a.request(2, { type: 'fetch', offset: 10, topic: 'tópic ✓', nested: { a: [1, null, 'x'] }, records }, LONG_MS), WAIT_MS, 'fetch')
  assert.is(seen!.from, 7)
  assert.equal({ ...seen!.request, records: undefined }, { type: 'fetch', offset: 10, topic: 'tópic ✓', nested: { a: [1, null, 'x'] }, records: undefined })
  assert.ok(Buffer.isBuffer(seen!.request.records))
  assert.ok(seen!.request.records!.equals(records), 'request records differ')
  assert.equal({ ...answer, records: undefined }, { type: 'fetched', highWatermark: 42, partitions: [{ topic: 't', partition: 0 }], records: undefined })
  assert.ok(Buffer.isBuffer(answer.records) && answer.records.equals(answerRecords), 'answer records differ')
})

it('a message without records arrives without them; an empty records Buffer arrives as an empty Buffer', async () => {
  const b = await server(2, echo)
  const a = client(1, [b])
  const none = await bounded(a.request(2, { type: 'plain' }, LONG_MS), WAIT_MS, 'plain')
  assert.equal(none, { type: 'plain', from: 1 })
  assert.not.ok('records' in none)
  const empty = await bounded(a.request(2, { type: 'empty', records: Buffer.alloc(0) }, LONG_MS), WAIT_MS, 'empty')
  assert.ok(Buffer.isBuffer(empty.records) && empty.records.length === 0)
})

it('answers to 300 concurrent requests are matched to their requests when the handler answers out of order', async () => {
  const random = rng(2)
  const order: number[] = []
  const b = await server(2, async (_from, request) => {
    await new Promise((resolve) => setTimeout(resolve, Math.floor(random() * 10)))
    order.push(request.i as number)
    return { type: 'ans', i: request.i, records: Buffer.from(`records of ${request.i}`) }
  })
  // Fewer slots than requests, so some wait in the queue too.
  const a = client(1, [b], { maxInFlight: 16 })
  const answers = await bounded(Promise.all(Array.from({ length: 300 }, (_, i) => a.request(2, { type: 'req', i }, LONG_MS))), WAIT_MS, '300 requests')
  answers.forEach((answer, i) => {
    assert.is(answer.i, i)
    assert.is(answer.records!.toString(), `records of ${i}`)
  })
  assert.ok(order.some((n, k) => k > 0 && n < order[k - 1]), 'the handler did answer out of order')
})

// --- errors ----------------------------------------------------------------------------------

it('a StrandError from the handler arrives with its code and message; any other failure arrives as IO_ERROR', async () => {
  const b = await server(2, (_from, request) => {
    switch (request.type) {
      case 'strand': return Promise.reject(new StrandError('NOT_LEADER', 'node 2 follows node 3 for t-0'))
      case 'throw': throw new TypeError('thrown synchronously')
      case 'reject': return Promise.reject(new Error('rejected later'))
      case 'not-a-message': return Promise.resolve({ records: 'not a buffer' } as unknown as Message)
      default: return Promise.resolve({ type: 'ok' })
    }
  })
  const a = client(1, [b])
  const e1 = await expectCode(a.request(2, { type: 'strand' }, LONG_MS), 'NOT_LEADER', 'StrandError')
  assert.is(e1.message, 'node 2 follows node 3 for t-0')
  const e2 = await expectCode(a.request(2, { type: 'throw' }, LONG_MS), 'IO_ERROR', 'sync throw')
  assert.is(e2.message, 'thrown synchronously')
  const e3 = await expectCode(a.request(2, { type: 'reject' }, LONG_MS), 'IO_ERROR', 'rejection')
  assert.is(e3.message, 'rejected later')
  await expectCode(a.request(2, { type: 'not-a-message' }, LONG_MS), 'IO_ERROR', 'bad answer')
  // The connection survived all of them.
  assert.equal(await bounded(a.request(2, { type: 'fine' }, LONG_MS), WAIT_MS, 'after errors'), { type: 'ok' })
})

it('a request not answered within timeoutMs fails with REQUEST_TIMED_OUT; its late answer is dropped and later requests get their own answers', async () => {
  let release: () => void = () => {}
  const gate = new Promise<void>((resolve) => { release = resolve })
  const b = await server(2, async (_from, request) => {
    if (request.type === 'slow') await gate
    return { type: 'ans', of: request.type, n: request.n }
  })
  const a = client(1, [b])
  await expectCode(a.request(2, { type: 'slow', n: 1 }, 50), 'REQUEST_TIMED_OUT', 'slow request')
  release()
  // The late answer to `slow` crosses these requests on the same connection.
  const answers = await bounded(Promise.all([2, 3, 4].map((n) => a.request(2, { type: 'fast', n }, LONG_MS))), WAIT_MS, 'after timeout')
  assert.equal(answers.map((x) => [x.of, x.n]), [['fast', 2], ['fast', 3], ['fast', 4]])
})

// --- unreachable peers and reconnection ------------------------------------------------------

it('a request to a node with no address, or with nothing listening at its address, fails with NODE_UNREACHABLE, not at its timeout', async () => {
  const a = transport({ nodeId: 1, peers: (id) => (id === 3 ? undefined : { host: LOCAL, port: 1 }) })
  const e = await expectCode(a.request(3, { type: 'x' }, LONG_MS), 'NODE_UNREACHABLE', 'no address')
  assert.match(e.message, 'node 3')
  a.setPeer(4, { host: LOCAL, port: await freePort() })
  await expectCode(a.request(4, { type: 'x' }, LONG_MS), 'NODE_UNREACHABLE', 'nothing listening')
})

it('during backoff after a failed connection, requests fail at once without connecting again', async () => {
  let connections = 0
  const raw = net.createServer((s) => { connections++; s.destroy() })
  await new Promise<void>((resolve) => raw.listen(0, LOCAL, resolve))
  try {
    const address = { host: LOCAL, port: (raw.address() as net.AddressInfo).port }
    const a = transport({ nodeId: 1, peers: { 2: address }, reconnectBackoffMs: 60_000, reconnectBackoffMaxMs: 60_000 })
    await expectCode(a.request(2, { type: 'x' }, LONG_MS), 'NODE_UNREACHABLE', 'connection closed before hello')
    const e = await expectCode(a.request(2, { type: 'x' }, LONG_MS), 'NODE_UNREACHABLE', 'during backoff')
    assert.match(e.message, 'next attempt in')
    // Announcing the same address again does not end the backoff.
    a.setPeer(2, { ...address })
    await expectCode(a.request(2, { type: 'x' }, LONG_MS), 'NODE_UNREACHABLE', 'same address, still in backoff')
    assert.is(connections, 1)
  } finally {
    raw.close()
  }
})

it('a peer that restarts on a new port (setPeer) or on the same port is reached again after backoff', async () => {
  const b1 = await server(2, async () => ({ type: 'from', server: 'b1' }))
  const a = client(1, [b1], { reconnectBackoffMs: 10, reconnectBackoffMaxMs: 40 })
  assert.is((await bounded(a.request(2, { type: 'x' }, LONG_MS), WAIT_MS, 'b1')).server, 'b1')
  await b1.close()
  await expectCode(a.request(2, { type: 'x' }, LONG_MS), 'NODE_UNREACHABLE', 'b1 closed')

  // New port: setPeer ends the backoff, so the very next request connects.
  const b2 = await server(2, async () => ({ type: 'from', server: 'b2' }))
  a.setPeer(2, { host: LOCAL, port: b2.port })
  assert.is((await bounded(a.request(2, { type: 'x' }, LONG_MS), WAIT_MS, 'b2')).server, 'b2')

  // Same port: found again once the backoff has passed; until then, only NODE_UNREACHABLE.
  const port = b2.port
  await b2.close()
  const b3 = await server(2, async () => ({ type: 'from', server: 'b3' }), { port })
  const codes = new Set<string>()
  let answer: Message | undefined
  for (let i = 0; i < 200 && answer === undefined; i++) {
    try {
      answer = await a.request(2, { type: 'x' }, LONG_MS)
    } catch (err) {
      codes.add((err as StrandError).code)
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
  }
  assert.is(answer?.server, 'b3')
  assert.ok([...codes].every((c) => c === 'NODE_UNREACHABLE'), [...codes].join())
  assert.is(b3.port, port)
})

it('setPeer to a new address drops the old connection: requests on it fail with NODE_UNREACHABLE, queued ones go to the new address', async () => {
  let delivered = 0
  const b1 = await server(2, () => { delivered++; return new Promise(() => {}) })
  const b2 = await server(2, async () => ({ type: 'from', server: 'b2' }))
  const a = client(1, [b1], { maxInFlight: 1 })
  const inFlight = a.request(2, { type: 'x' }, LONG_MS)
  const queued = a.request(2, { type: 'x' }, LONG_MS)
  await until(() => delivered === 1, 'first request written to b1')
  a.setPeer(2, { host: LOCAL, port: b2.port })
  await expectCode(inFlight, 'NODE_UNREACHABLE', 'in flight on the old address')
  assert.is((await bounded(queued, WAIT_MS, 'queued')).server, 'b2')
})

it('a peer that accepts connections but never says hello: requests time out or fail with NODE_UNREACHABLE after connectTimeoutMs', async () => {
  const sockets: net.Socket[] = []
  const silent = net.createServer((s) => { sockets.push(s); s.on('error', () => {}) })
  await new Promise<void>((resolve) => silent.listen(0, LOCAL, resolve))
  try {
    const a = transport({ nodeId: 1, peers: { 2: { host: LOCAL, port: (silent.address() as net.AddressInfo).port } }, connectTimeoutMs: 300 })
    // Queued behind the connection, each request still has its own timeout...
    const short = a.request(2, { type: 'x' }, 50)
    const long = a.request(2, { type: 'x' }, LONG_MS)
    await expectCode(short, 'REQUEST_TIMED_OUT', 'short timeout while connecting')
    // ...and the attempt itself gives up after connectTimeoutMs.
    const e = await expectCode(long, 'NODE_UNREACHABLE', 'no hello')
    assert.match(e.message, 'connectTimeoutMs')
  } finally {
    for (const s of sockets) s.destroy()
    silent.close()
  }
})

it('a server closes a connection that sends no hello within connectTimeoutMs', async () => {
  const b = await server(2, echo, { connectTimeoutMs: 200 })
  const raw = await rawSocket(b.port)
  await bounded(raw.closed, WAIT_MS, 'silent connection closed')
  assert.is(raw.received().length, 0)
})

it('a server that says it is another node gets no request, and the request fails with NODE_UNREACHABLE', async () => {
  let calls = 0
  const other = await server(5, async () => { calls++; return { type: 'ok' } })
  const a = transport({ nodeId: 1, peers: { 2: { host: LOCAL, port: other.port } } })
  const e = await expectCode(a.request(2, { type: 'x' }, LONG_MS), 'NODE_UNREACHABLE', 'wrong node')
  assert.match(e.message, 'node 5')
  assert.is(calls, 0)
})

// --- bounds and isolation ----------------------------------------------------------------------

it('a peer whose handler never answers delays neither requests to another peer nor its own queue bound: excess requests fail at once', async () => {
  const pending: Array<(m: Message) => void> = []
  const slow = await server(2, () => new Promise<Message>((resolve) => pending.push(resolve)))
  const fast = await server(3, echo)
  const a = client(1, [slow, fast], { maxInFlight: 2, maxQueued: 3 })
  const toSlow = Array.from({ length: 5 }, (_, i) => a.request(2, { type: 'x', i }, LONG_MS))
  // Checked one by one below; marked handled now so that their rejections at close() are not reported as unhandled meanwhile.
  for (const p of toSlow) p.catch(() => {})
  await until(() => pending.length === 2, 'two requests reach the slow handler')
  // The 6th finds 2 in flight and 3 queued.
  const e = await expectCode(a.request(2, { type: 'x', i: 5 }, LONG_MS), 'NODE_UNREACHABLE', 'queue full')
  assert.match(e.message, 'maxQueued')
  assert.is((await bounded(a.request(3, { type: 'y' }, LONG_MS), WAIT_MS, 'fast peer')).type, 'y')
  assert.is(pending.length, 2, 'no more than maxInFlight were written')
  // One answer frees one slot: the oldest queued request goes out.
  pending[0]({ type: 'done', i: 0 })
  assert.is((await bounded(toSlow[0], WAIT_MS, 'first answer')).i, 0)
  await until(() => pending.length === 3, 'the third request reaches the slow handler')
  await a.close()
  for (const [i, p] of toSlow.slice(1).entries()) await expectCode(p, 'LOG_CLOSED', `request ${i + 1} at close`)
})

it('a server handles at most maxInFlight requests from one connection at once and reads the rest as answers go out', async () => {
  let active = 0
  let most = 0
  const b = await server(2, async (_from, request) => {
    most = Math.max(most, ++active)
    await new Promise((resolve) => setTimeout(resolve, 2))
    active--
    return { type: 'ans', i: request.i }
  }, { maxInFlight: 2 })
  const a = client(1, [b], { maxInFlight: 32 })
  const answers = await bounded(Promise.all(Array.from({ length: 40 }, (_, i) => a.request(2, { type: 'x', i }, LONG_MS))), WAIT_MS, '40 requests')
  assert.equal(answers.map((x) => x.i), Array.from({ length: 40 }, (_, i) => i))
  assert.is(most, 2)
})

it('a message larger than maxFrameBytes fails with RECORD_TOO_LARGE before it is sent; an answer too large arrives as RECORD_TOO_LARGE', async () => {
  let calls = 0
  const b = await server(2, async (_from, request) => {
    calls++
    return { type: 'ans', records: Buffer.alloc(request.answerBytes as number) }
  }, { maxFrameBytes: 64 * 1024 })
  const a = client(1, [b], { maxFrameBytes: 64 * 1024 })
  await expectCode(a.request(2, { type: 'x', answerBytes: 0, records: Buffer.alloc(64 * 1024) }, LONG_MS), 'RECORD_TOO_LARGE', 'request too large')
  assert.is(calls, 0)
  await expectCode(a.request(2, { type: 'x', answerBytes: 64 * 1024 }, LONG_MS), 'RECORD_TOO_LARGE', 'answer too large')
  assert.is((await bounded(a.request(2, { type: 'x', answerBytes: 1000 }, LONG_MS), WAIT_MS, 'small answer')).records!.length, 1000)
})

// --- malformed frames ------------------------------------------------------------------------

it('the server answers a hello with its own, laid out as the frame table says', async () => {
  const b = await server(2, echo)
  const raw = await rawSocket(b.port)
  raw.socket.write(hello(9))
  await until(() => raw.received().length >= 14, 'hello back')
  const got = raw.received()
  const length = got.readUInt32BE(0)
  assert.is(got.length, 4 + length)
  assert.is(got[4], 1, 'kind hello')
  assert.is(got[5], 0, 'no flags')
  assert.is(got.readUInt32BE(6), 0, 'request id 0')
  const headerLength = got.readUInt32BE(10)
  assert.is(14 + headerLength, got.length)
  assert.equal(JSON.parse(got.toString('utf8', 14)), { protocol: 'strand', version: 1, nodeId: 2 })
  // A request written by hand is answered with the same id, records after the header.
  raw.socket.write(frame(2, 77, { type: 'hand' }, Buffer.from('raw bytes')))
  await until(() => raw.received().length > got.length + 14, 'answer')
  const answer = raw.received().subarray(got.length)
  assert.is(answer[4], 3, 'kind response')
  assert.is(answer[5], 1, 'records flag')
  assert.is(answer.readUInt32BE(6), 77)
  const h = answer.readUInt32BE(10)
  assert.equal(JSON.parse(answer.toString('utf8', 14, 14 + h)), { type: 'hand', from: 9 })
  assert.is(answer.toString('utf8', 14 + h), 'raw bytes')
  raw.socket.destroy()
})

it('a malformed frame closes only its connection; the server keeps answering other peers', async () => {
  const b = await server(2, echo, { maxFrameBytes: 1024 * 1024 })
  const a = client(1, [b])
  assert.is((await bounded(a.request(2, { type: 'before' }, LONG_MS), WAIT_MS, 'before')).type, 'before')
  const oversize = Buffer.alloc(4)
  oversize.writeUInt32BE(0xffffffff)
  const tooShort = Buffer.alloc(4)
  tooShort.writeUInt32BE(3)
  const badFlags = hello(9)
  badFlags[5] = 0x80
  const cases: Array<[string, Buffer]> = [
    ['text instead of frames', Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')],
    ['a length of 2^32 - 1', Buffer.concat([oversize, Buffer.alloc(100)])],
    ['a length below the fixed fields', Buffer.concat([tooShort, Buffer.alloc(100)])],
    ['a frame over 4 KiB before hello', frame(1, 0, { protocol: 'strand', version: 1, nodeId: 9, pad: 'x'.repeat(5000) })],
    ['a request before hello', frame(2, 1, { type: 'x' })],
    ['a hello of another protocol', frame(1, 0, { protocol: 'kafka', version: 1, nodeId: 9 })],
    ['reserved flag bits', badFlags],
    ['an unknown kind after hello', Buffer.concat([hello(9), frame(9, 1, { type: 'x' })])],
    ['a header that is not JSON', Buffer.concat([hello(9), frame(2, 1, '{"type": oops')])],
    ['a header that is not an object', Buffer.concat([hello(9), frame(2, 1, [1, 2])])],
    ['a request without a type', Buffer.concat([hello(9), frame(2, 1, { kind: 'x' })])],
    ['records inside the JSON header', Buffer.concat([hello(9), frame(2, 1, { type: 'x', records: 'AAAA' })])],
    ['a header length beyond the frame', (() => { const f = Buffer.concat([hello(9), frame(2, 1, { type: 'x' })]); f.writeUInt32BE(1000, hello(9).length + 10); return f })()],
    ['a response sent to a server', Buffer.concat([hello(9), frame(3, 1, { type: 'x' })])],
  ]
  for (const [what, bytes] of cases) {
    const raw = await rawSocket(b.port)
    raw.socket.write(bytes)
    await bounded(raw.closed, WAIT_MS, `server closes the connection on ${what}`)
  }
  // A frame split across many small writes is still read (the reader's partial paths).
  const raw = await rawSocket(b.port)
  const bytes = Buffer.concat([hello(9), frame(2, 5, { type: 'split' }, Buffer.alloc(3000, 7))])
  for (let i = 0; i < bytes.length; i += 3) raw.socket.write(bytes.subarray(i, i + 3))
  await until(() => raw.received().length > 0 && raw.received().length >= raw.received().readUInt32BE(0) + 4 + 14, 'split frame answered')
  raw.socket.destroy()
  assert.is((await bounded(a.request(2, { type: 'after' }, LONG_MS), WAIT_MS, 'after')).type, 'after')
})

it('a server that sends a malformed frame fails the requests on that connection with NODE_UNREACHABLE', async () => {
  const raw = net.createServer((s) => {
    s.on('error', () => {})
    let sent = false
    s.on('data', () => {
      // The first chunk holds the hello: answer as node 2; the next holds a request: answer with a frame of no known kind.
      if (!sent) s.write(hello(2))
      else s.write(frame(7, 1, { type: 'x' }))
      sent = true
    })
  })
  await new Promise<void>((resolve) => raw.listen(0, LOCAL, resolve))
  try {
    const a = transport({ nodeId: 1, peers: { 2: { host: LOCAL, port: (raw.address() as net.AddressInfo).port } } })
    const e = await expectCode(a.request(2, { type: 'x' }, LONG_MS), 'NODE_UNREACHABLE', 'garbage answer')
    assert.match(e.message, 'malformed')
  } finally {
    raw.close()
  }
})

// --- close --------------------------------------------------------------------------------------

it('close() fails in-flight and queued requests with LOG_CLOSED, refuses new ones and is idempotent', async () => {
  const pending: number[] = []
  const b = await server(2, (_from, request) => { pending.push(request.i as number); return new Promise(() => {}) })
  const a = client(1, [b], { maxInFlight: 1 })
  const inFlight = a.request(2, { type: 'x', i: 0 }, LONG_MS)
  const queued = a.request(2, { type: 'x', i: 1 }, LONG_MS)
  for (const p of [inFlight, queued]) p.catch(() => {})
  await until(() => pending.length === 1, 'first request delivered')
  await Promise.all([a.close(), a.close()])
  await expectCode(inFlight, 'LOG_CLOSED', 'in flight')
  await expectCode(queued, 'LOG_CLOSED', 'queued')
  await expectCode(a.request(2, { type: 'x' }, LONG_MS), 'LOG_CLOSED', 'after close')
  await a.close()
  await b.close()
  await expectCode(b.serve(echo), 'LOG_CLOSED', 'serve after close')
  // The closed server's port takes no connections.
  const refused = net.connect({ host: LOCAL, port: b.port })
  await bounded(new Promise<void>((resolve) => refused.once('error', () => resolve())), WAIT_MS, 'connection refused')
})

it('a process whose transports are closed exits by itself', async () => {
  const child = spawnChild(CLOSE_EXIT, [])
  child.proc.stdin!.end()
  try {
    const code = await bounded(new Promise<number | null>((resolve) => child.proc.once('exit', (c) => resolve(c))), WAIT_MS, 'child exits after close()')
    await child.closed
    assert.is(code, 0, child.output())
    assert.equal(child.lines, ['answered', 'closed LOG_CLOSED'], child.output())
  } finally {
    await killHard(child, WAIT_MS)
  }
})

// --- arguments ------------------------------------------------------------------------------------

it('bad options and arguments fail with INVALID_ARGUMENT', async () => {
  const bad: Array<Partial<TcpTransportOptions>> = [
    { nodeId: -1 }, { nodeId: 1.5 }, { nodeId: 1, host: '' }, { nodeId: 1, port: 70000 }, { nodeId: 1, port: -1 },
    { nodeId: 1, connectTimeoutMs: 0 }, { nodeId: 1, reconnectBackoffMs: -1 },
    { nodeId: 1, reconnectBackoffMs: 100, reconnectBackoffMaxMs: 50 }, { nodeId: 1, reconnectJitter: 2 },
    { nodeId: 1, maxInFlight: 0 }, { nodeId: 1, maxQueued: -1 }, { nodeId: 1, maxFrameBytes: 100 },
    { nodeId: 1, peers: { 2: { host: LOCAL, port: 0 } } }, { nodeId: 1, peers: new Map([[-2, { host: LOCAL, port: 1 }]]) },
    { nodeId: 1, peers: 'x' as unknown as Map<number, { host: string, port: number }> },
  ]
  for (const options of bad) {
    try {
      new TcpTransport(options as TcpTransportOptions)
      assert.unreachable(JSON.stringify(options))
    } catch (err) {
      assert.is((err as StrandError).code, 'INVALID_ARGUMENT', `${JSON.stringify(options)}: ${(err as Error).message}`)
      assert.match((err as Error).message, /^Expected `/)
    }
  }
  assert.is(TCP_TRANSPORT_DEFAULTS.host, '127.0.0.1')
  const a = transport({ nodeId: 1 })
  assert.throws(() => a.setPeer(2, { host: LOCAL, port: 0 }), (err: StrandError) => err.code === 'INVALID_ARGUMENT')
  assert.throws(() => a.setPeer(-1, { host: LOCAL, port: 1 }), (err: StrandError) => err.code === 'INVALID_ARGUMENT')
  await expectCode(a.request(-1, { type: 'x' }, 100), 'INVALID_ARGUMENT', 'bad node id')
  await expectCode(a.request(2, { type: 'x' }, 0), 'INVALID_ARGUMENT', 'bad timeout')
  await expectCode(a.request(2, { type: 3 } as unknown as Message, 100), 'INVALID_ARGUMENT', 'bad type')
  await expectCode(a.request(2, { type: 'x', records: 'no' as unknown as Buffer }, 100), 'INVALID_ARGUMENT', 'bad records')
  await expectCode(a.request(2, { type: 'x', n: 1n }, 100), 'INVALID_ARGUMENT', 'not JSON')
  await a.serve(echo)
  await expectCode(a.serve(echo), 'INVALID_ARGUMENT', 'serve twice')
  const taken = transport({ nodeId: 3, port: a.port })
  await expectCode(taken.serve(echo), 'IO_ERROR', 'port in use')
})

// --- across processes ---------------------------------------------------------------------------

it('a node in another process: requests fail with NODE_UNREACHABLE once it is SIGKILLed and succeed again after it restarts on a new port', async () => {
  const children: Child[] = []
  const start = async (): Promise<{ child: Child, port: number }> => {
    const child = spawnChild(PEER, ['2'])
    children.push(child)
    const line = await waitForLine(child, (l) => l.startsWith('port '), WAIT_MS, 'child serving')
    return { child, port: Number(line.slice(5)) }
  }
  try {
    const first = await start()
    const a = transport({ nodeId: 1, peers: { 2: { host: LOCAL, port: first.port } }, reconnectBackoffMs: 10, reconnectBackoffMaxMs: 50 })
    const records = Buffer.alloc(256 * 1024, 3)
    const before = await bounded(a.request(2, { type: 'echo', n: 1, records }, LONG_MS), WAIT_MS, 'first child')
    assert.is(before.pid, first.child.proc.pid)
    assert.is(before.from, 1)
    assert.ok(before.records!.equals(records))

    // Requests in flight when the child dies, and after, fail as unreachable, not as timeouts.
    const inFlight = Array.from({ length: 20 }, (_, n) => a.request(2, { type: 'echo', n, records }, LONG_MS).then(() => 'answered', (err: StrandError) => err.code))
    await killHard(first.child, WAIT_MS)
    const codes = await bounded(Promise.all(inFlight), WAIT_MS, 'in-flight requests settle')
    assert.ok(codes.every((c) => c === 'answered' || c === 'NODE_UNREACHABLE'), codes.join())
    await expectCode(a.request(2, { type: 'echo' }, LONG_MS), 'NODE_UNREACHABLE', 'after SIGKILL')

    const second = await start()
    a.setPeer(2, { host: LOCAL, port: second.port })
    const after = await bounded(a.request(2, { type: 'echo', n: 2 }, LONG_MS), WAIT_MS, 'restarted child')
    assert.is(after.pid, second.child.proc.pid)
    assert.is(after.n, 2)
  } finally {
    for (const child of children) await killHard(child, WAIT_MS)
  }
})

test.run()
