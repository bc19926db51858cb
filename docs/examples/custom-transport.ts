/**
 * docs/replication.md, "A transport of your own": the Transport interface implemented over
 * HTTP in under 40 lines, and two logs replicating through it.
 *
 *   npx tsx docs/examples/custom-transport.ts
 */
import fs from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import { InProcessController, Log, StrandError, type NodeId, type RequestHandler, type Transport, type TransportMessage as Message } from '../../lib/index.js'

// One POST per request; the body is [uint32 length][JSON fields][raw records].
const encode = ({ records, ...fields }: Message) => {
  const json = Buffer.from(JSON.stringify(fields))
  return Buffer.concat([Buffer.from(Uint32Array.of(json.length).buffer), json, records ?? Buffer.alloc(0)])
}
const decode = (b: Buffer): Message => {
  const n = b.readUInt32LE(0)
  const m = JSON.parse(b.subarray(4, 4 + n).toString()) as Message
  return b.length > 4 + n ? { ...m, records: b.subarray(4 + n) } : m
}

class HttpTransport implements Transport {
  #server = http.createServer()
  constructor(readonly nodeId: NodeId, readonly ports: Map<NodeId, number>) {}

  async serve(handler: RequestHandler): Promise<void> {
    this.#server.on('request', async (req, res) => {
      const body = Buffer.concat(await req.toArray())
      const answer = await handler(Number(req.headers['x-from']), decode(body))
        .catch((err: StrandError) => ({ type: 'error', code: err.code ?? 'IO_ERROR', message: err.message }))
      res.end(encode(answer))
    })
    await new Promise<void>((resolve) => this.#server.listen(this.ports.get(this.nodeId), '127.0.0.1', resolve))
  }

  async request(to: NodeId, message: Message, timeoutMs: number): Promise<Message> {
    const res = await fetch(`http://127.0.0.1:${this.ports.get(to)}/`, {
      method: 'POST', body: encode(message), headers: { 'x-from': String(this.nodeId) }, signal: AbortSignal.timeout(timeoutMs),
    }).catch((err: Error) => { throw new StrandError(err.name === 'TimeoutError' ? 'REQUEST_TIMED_OUT' : 'NODE_UNREACHABLE', `node ${to}: ${err.message}`) })
    const answer = decode(Buffer.from(await res.arrayBuffer()))
    if (answer.type === 'error') throw new StrandError(answer.code as StrandError['code'], answer.message as string)
    return answer
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections()
    await new Promise((resolve) => this.#server.close(resolve))
  }
}

// Two nodes in one process, each on its own HTTP port, and a controller object they share.
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'strand-http-'))
const ports = new Map([[1, 19_471], [2, 19_472]])
const controller = new InProcessController()
const [a, b] = await Promise.all([1, 2].map((id) => Log.open(path.join(root, `node-${id}`), {
  replication: { nodeId: id, transport: new HttpTransport(id, ports), controller, fetchMaxWaitMs: 100 },
})))
try {
  await a.cluster!.createTopic('orders', { partitions: 1, replicationFactor: 2, assignment: [[1, 2]], config: { minInsyncReplicas: 2 } })
  await a.cluster!.waitFor(() => a.cluster!.replica('orders', 0)?.isLeader === true, 5000)

  const producer = a.producer({ acks: 'all' })
  const [sent] = await producer.send({ topic: 'orders', messages: [{ key: 'customer-1', value: 'tea' }] })
  console.log(`acks='all' on node 1: offset ${sent.offset}`)
  await producer.close()

  await b.cluster!.waitFor(() => b.topic('orders').partition(0).highWatermark === 1, 5000)
  const copy = b.topic('orders').partition(0).read(0).records()[0]
  console.log(`node 2 (follower) holds offset ${copy.offset}: ${copy.key} = ${copy.value}`)
} finally {
  await b.close()
  await a.close()
  controller.close()
  fs.rmSync(root, { recursive: true, force: true })
}
