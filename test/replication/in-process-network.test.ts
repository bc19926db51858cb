/**
 * InProcessNetwork against the Transport contract (lib/replication/transport.ts): answers
 * reach the requester, handler errors keep their code (others arrive as IO_ERROR), timeouts,
 * unreachable nodes, close() failing what is in flight, and handlers never running inside
 * the caller's own call.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { StrandError } from '../../lib/errors.js'
import { InProcessNetwork } from '../../lib/replication/in-process-network.js'
import type { Message } from '../../lib/replication/transport.js'
import { bounded, expectCode } from '../helpers.js'

const WAIT_MS = 10_000


test('a request reaches the node it is sent to, with the sender, and its answer comes back', async () => {
  const net = new InProcessNetwork()
  const a = net.transport(1)
  const b = net.transport(2)
  const c = net.transport(3)
  await b.serve(async (from, m) => ({ type: 'answer', by: 2, from, echo: m.n }))
  await c.serve(async (from, m) => ({ type: 'answer', by: 3, from, echo: m.n }))
  const records = Buffer.from('whole batches')
  const [x, y] = await bounded(Promise.all([
    a.request(2, { type: 'ping', n: 7, records }, WAIT_MS),
    a.request(3, { type: 'ping', n: 8 }, WAIT_MS),
  ]), WAIT_MS, 'answers')
  assert.equal(x, { type: 'answer', by: 2, from: 1, echo: 7 })
  assert.equal(y, { type: 'answer', by: 3, from: 1, echo: 8 })
  let seen: Buffer | undefined
  await b.close()
  const d = net.transport(2)
  await d.serve(async (_from, m) => { seen = m.records; return { type: 'ok' } })
  await a.request(2, { type: 'fetch', records }, WAIT_MS)
  assert.ok(seen !== undefined && seen.equals(records), 'records arrive with the same bytes')
  await Promise.all([a.close(), c.close(), d.close()])
})

test("a handler's StrandError arrives with its code and message; any other error as IO_ERROR", async () => {
  const net = new InProcessNetwork()
  const a = net.transport(1)
  const b = net.transport(2)
  await b.serve(async (_from, m) => {
    if (m.type === 'strand') throw new StrandError('NOT_LEADER', 'node 2 follows node 3')
    if (m.type === 'sync-throw') throw new TypeError('boom')
    throw new Error('plain failure')
  })
  const e1 = await expectCode(a.request(2, { type: 'strand' }, WAIT_MS), 'NOT_LEADER', 'StrandError')
  assert.is(e1.message, 'node 2 follows node 3')
  const e2 = await expectCode(a.request(2, { type: 'other' }, WAIT_MS), 'IO_ERROR', 'plain Error')
  assert.match(e2.message, 'plain failure')
  await expectCode(a.request(2, { type: 'sync-throw' }, WAIT_MS), 'IO_ERROR', 'TypeError')
  await Promise.all([a.close(), b.close()])
})

test('a handler that throws synchronously (not an async function) still answers with an error', async () => {
  const net = new InProcessNetwork()
  const a = net.transport(1)
  const b = net.transport(2)
  await b.serve(((_from: number, _m: Message) => { throw new StrandError('STALE_STATE', 'old') }) as unknown as Parameters<typeof b.serve>[0])
  await expectCode(a.request(2, { type: 'x' }, WAIT_MS), 'STALE_STATE', 'synchronous throw')
  await Promise.all([a.close(), b.close()])
})

test('a request with no answer within timeoutMs fails with REQUEST_TIMED_OUT; a late answer is dropped', async () => {
  const net = new InProcessNetwork()
  const a = net.transport(1)
  const b = net.transport(2)
  let release!: () => void
  const held = new Promise<void>((resolve) => { release = resolve })
  await b.serve(async () => { await held; return { type: 'late' } })
  await expectCode(a.request(2, { type: 'slow' }, 20), 'REQUEST_TIMED_OUT', 'held request')
  release()
  // The late answer settles nothing (settling twice would throw or leak an unhandled rejection).
  await new Promise((resolve) => setTimeout(resolve, 10))
  await Promise.all([a.close(), b.close()])
})

test('requests to a node that is not serving, never was, or has closed fail with NODE_UNREACHABLE', async () => {
  const net = new InProcessNetwork()
  const a = net.transport(1)
  await expectCode(a.request(9, { type: 'x' }, WAIT_MS), 'NODE_UNREACHABLE', 'unknown node')
  const b = net.transport(2)
  await expectCode(a.request(2, { type: 'x' }, WAIT_MS), 'NODE_UNREACHABLE', 'a node that has not called serve')
  await b.serve(async () => ({ type: 'ok' }))
  assert.equal(await a.request(2, { type: 'x' }, WAIT_MS), { type: 'ok' })
  await b.close()
  await expectCode(a.request(2, { type: 'x' }, WAIT_MS), 'NODE_UNREACHABLE', 'a closed node')
  await a.close()
})

test('a node id can serve again after its transport closed (a restarted node); not twice at once', async () => {
  const net = new InProcessNetwork()
  const a = net.transport(1)
  const first = net.transport(2)
  await first.serve(async () => ({ type: 'first' }))
  const second = net.transport(2)
  await expectCode(second.serve(async () => ({ type: 'second' })), 'INVALID_ARGUMENT', 'two live transports for one node')
  await expectCode(first.serve(async () => ({ type: 'again' })), 'INVALID_ARGUMENT', 'serve twice')
  await first.close()
  const third = net.transport(2)
  await third.serve(async () => ({ type: 'third' }))
  assert.equal(await a.request(2, { type: 'x' }, WAIT_MS), { type: 'third' })
  // The old transport's close must not detach the new one.
  await first.close()
  assert.equal(await a.request(2, { type: 'x' }, WAIT_MS), { type: 'third' })
  await Promise.all([a.close(), third.close()])
})

test('close fails the requests in flight with LOG_CLOSED, refuses new ones, and is idempotent', async () => {
  const net = new InProcessNetwork()
  const a = net.transport(1)
  const b = net.transport(2)
  await b.serve(() => new Promise<Message>(() => {}))
  const pending = [a.request(2, { type: 'x' }, 60_000), a.request(2, { type: 'y' }, 60_000)]
  await new Promise((resolve) => setTimeout(resolve, 5))
  await a.close()
  for (const p of pending) await expectCode(p, 'LOG_CLOSED', 'in flight at close')
  await expectCode(a.request(2, { type: 'z' }, WAIT_MS), 'LOG_CLOSED', 'after close')
  await expectCode(a.serve(async () => ({ type: 'ok' })), 'LOG_CLOSED', 'serve after close')
  await a.close()
  await b.close()
})

test('the handler runs after the request call returns, never inside it', async () => {
  const net = new InProcessNetwork()
  const a = net.transport(1)
  const b = net.transport(2)
  const order: string[] = []
  await b.serve(async () => { order.push('handler'); return { type: 'ok' } })
  const p = a.request(2, { type: 'x' }, WAIT_MS)
  order.push('returned')
  await p
  assert.equal(order, ['returned', 'handler'])
  // A node may send to itself without re-entering its own call.
  const self: string[] = []
  await a.serve(async () => { self.push('handler'); return { type: 'self' } })
  const q = a.request(1, { type: 'x' }, WAIT_MS)
  self.push('returned')
  assert.equal(await q, { type: 'self' })
  assert.equal(self, ['returned', 'handler'])
  await Promise.all([a.close(), b.close()])
})

test('node ids must be integers >= 0', () => {
  const net = new InProcessNetwork()
  for (const bad of [-1, 1.5, NaN, '2' as unknown as number]) {
    try {
      net.transport(bad)
      assert.unreachable(`node id ${String(bad)}`)
    } catch (err) {
      assert.is((err as StrandError).code, 'INVALID_ARGUMENT', `node id ${String(bad)}`)
    }
  }
})

test.run()
