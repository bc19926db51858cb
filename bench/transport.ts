/**
 * Transport benchmark: TcpTransport over loopback between two transports, in one process and
 * (with --processes) across two.
 *
 * - round trips/s of small messages (a JSON request, a JSON answer), one at a time (with its
 *   latency percentiles) and with 64 in flight;
 * - MB/s of 1 MiB `records` answers (a follower fetching from a leader), 1 and 4 in flight.
 *
 *   npx tsx bench/transport.ts                 # one process
 *   npx tsx bench/transport.ts --processes     # the server in a child process too
 *   npx tsx bench/transport.ts --quick         # a smoke run, a second or two
 *
 * Prints numbers; never asserts on them. Every answer is checked (its sequence number, and
 * for records their length and a sample of bytes; the first fully), so a fast wrong answer
 * fails the run.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import os from 'node:os'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { TcpTransport } from '../lib/replication/tcp-transport.js'
import { percentile } from './latency.js'

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    processes: { type: 'boolean', default: false },
    /** Internal: run as the serving child of --processes. */
    serve: { type: 'boolean', default: false },
  },
})

const MiB = 1024 * 1024
const scale = args.quick ? 0.02 : 1
const SEQUENTIAL = Math.round(20_000 * scale)
const PIPELINED = Math.round(200_000 * scale)
const FETCHES = Math.max(20, Math.round(4096 * scale))
const TIMEOUT_MS = 30_000
const SERVER = 2
const CLIENT = 1

/** The 1 MiB every fetch answers with: byte i is a function of i, so a sample can be checked without keeping a copy. */
function fetchRecords(): Buffer {
  const b = Buffer.allocUnsafe(MiB)
  for (let i = 0; i < b.length; i++) b[i] = (i * 131 + (i >>> 10)) & 0xff
  return b
}

async function serve(port = 0): Promise<TcpTransport> {
  const records = fetchRecords()
  const t = new TcpTransport({ nodeId: SERVER, port })
  await t.serve(async (_from, request) => {
    if (request.type === 'fetch') return { type: 'fetched', seq: request.seq, highWatermark: 123456789, records }
    return { type: 'pong', seq: request.seq }
  })
  return t
}

function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(`bench/transport.ts: wrong answer: ${what}`)
}

function fmt(n: number): string {
  return n >= 1e6 ? (n / 1e6).toFixed(2) + ' M' : n >= 1e3 ? (n / 1e3).toFixed(1) + ' k' : n.toFixed(0)
}

/** Runs `total` calls of `one(seq)` keeping `inFlight` outstanding; returns seconds. */
async function drive(total: number, inFlight: number, one: (seq: number) => Promise<void>): Promise<number> {
  let next = 0
  const t0 = process.hrtime.bigint()
  const worker = async () => {
    while (next < total) await one(next++)
  }
  await Promise.all(Array.from({ length: inFlight }, worker))
  return Number(process.hrtime.bigint() - t0) / 1e9
}

async function run(label: string, client: TcpTransport): Promise<void> {
  const expected = fetchRecords()
  const ping = async (seq: number) => {
    const a = await client.request(SERVER, { type: 'ping', seq }, TIMEOUT_MS)
    check(a.seq === seq, `pong ${a.seq} for ping ${seq}`)
  }
  // Warm-up: the connection, the JIT.
  await drive(Math.min(2000, SEQUENTIAL), 8, ping)

  const lat = new Float64Array(SEQUENTIAL)
  const seqSec = await drive(SEQUENTIAL, 1, async (seq) => {
    const t = process.hrtime.bigint()
    await ping(seq)
    lat[seq] = Number(process.hrtime.bigint() - t) / 1000
  })
  lat.sort()
  console.log(`${label}  small, 1 in flight    ${fmt(SEQUENTIAL / seqSec).padStart(8)} round trips/s   p50 ${percentile(lat, 0.5).toFixed(0)} µs  p99 ${percentile(lat, 0.99).toFixed(0)} µs`)
  const pipeSec = await drive(PIPELINED, 64, ping)
  console.log(`${label}  small, 64 in flight   ${fmt(PIPELINED / pipeSec).padStart(8)} round trips/s`)

  let full = false
  const fetch = async (seq: number) => {
    const a = await client.request(SERVER, { type: 'fetch', seq, maxBytes: MiB }, TIMEOUT_MS)
    const r = a.records
    check(a.seq === seq && r !== undefined && r.length === MiB, `fetch ${seq}: seq ${a.seq}, ${r?.length} bytes`)
    if (!full) {
      check(r!.equals(expected), 'first fetch differs')
      full = true
    }
    for (let i = seq % 4099; i < MiB; i += 65_537) check(r![i] === expected[i], `fetch ${seq} byte ${i}`)
  }
  for (const inFlight of [1, 4]) {
    const sec = await drive(FETCHES, inFlight, fetch)
    console.log(`${label}  1 MiB answers, ${inFlight} in flight ${(FETCHES * MiB / 1e6 / sec).toFixed(0).padStart(7)} MB/s        (${fmt(FETCHES / sec)} answers/s)`)
  }
}

async function child(): Promise<void> {
  const t = await serve()
  process.stdin.on('close', () => { void t.close() })
  process.stdin.resume()
  console.log(`port ${t.port}`)
}

async function main(): Promise<void> {
  console.log(`node ${process.version}, ${os.cpus().length} CPUs, ${args.quick ? 'quick' : 'full'} run`)
  {
    const server = await serve()
    const client = new TcpTransport({ nodeId: CLIENT, peers: { [SERVER]: { host: '127.0.0.1', port: server.port } } })
    try {
      await run('1 process  ', client)
    } finally {
      await client.close()
      await server.close()
    }
  }
  if (args.processes) {
    const proc = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--serve'], { stdio: ['pipe', 'pipe', 'inherit'] })
    try {
      const lines = createInterface({ input: proc.stdout! })
      const [line] = (await Promise.race([once(lines, 'line'), once(proc, 'exit').then(() => { throw new Error('server child exited before serving') })])) as [string]
      const port = Number(/^port (\d+)$/.exec(line)?.[1])
      const client = new TcpTransport({ nodeId: CLIENT, peers: { [SERVER]: { host: '127.0.0.1', port } } })
      try {
        await run('2 processes', client)
      } finally {
        await client.close()
      }
    } finally {
      proc.stdin!.end()
      if (proc.exitCode === null && proc.signalCode === null) {
        const exited = once(proc, 'exit')
        const kill = setTimeout(() => proc.kill('SIGKILL'), 5000)
        await exited
        clearTimeout(kill)
      }
    }
  }
}

await (args.serve ? child() : main())
