/**
 * strand through its kafkajs-shaped clients, with their defaults (what an application gets
 * without tuning): `producer.send` of the whole batch as messages (acks 'all', idempotent,
 * batchSize 16 KiB, lingerMs 0), a group consumer's `eachBatch` from the beginning for scans,
 * its `eachMessage` for tailing. W2 gives each of the 64 writers its own producer. There is no
 * point read in the clients (a consumer seeks and fetches), and open time is the engine's.
 */
import { randomUUID } from 'node:crypto'
import type { Consumer, Log, Message, Producer } from '../../lib/index.js'
import { openLog, TOPIC } from './strand.js'
import type { Batch, Follower, OpenOptions, Store, System, Value } from './system.js'

/** A scan whose consumer delivers nothing for this long fails. */
const STALL_MS = 30_000

class ClientStore implements Store {
  readonly #log: Log
  readonly #producers: Producer[]
  readonly #perWriter = new WeakMap<readonly Buffer[], Message[]>()

  constructor(log: Log, writers: number) {
    this.#log = log
    this.#producers = Array.from({ length: writers }, () => log.producer())
  }

  append(batch: Batch): Promise<void> {
    let messages = this.#perWriter.get(batch.values)
    if (messages === undefined) this.#perWriter.set(batch.values, messages = batch.values.map((value) => ({ value })))
    const n = batch.values.length
    const producer = this.#producers[(batch.first / n) % this.#producers.length]
    const first = batch.first
    return producer.send({ topic: TOPIC, messages }).then((r) => {
      // With several producers, batches interleave: only the single-writer order is checkable here.
      if (r.length !== n || (this.#producers.length === 1 && r[0].offset !== first)) {
        throw new Error(`send of records ${first}… answered ${r.length} offsets from ${r[0]?.offset}`)
      }
    })
  }

  count(): number {
    const p = this.#log.topic(TOPIC).partition(0)
    return p.logEndOffset - p.logStartOffset
  }

  /** A new group consumer from the beginning; resolves once it has delivered everything there was. */
  async scan(from: number, see: (value: Value) => void): Promise<void> {
    if (from !== 0) throw new Error('the client scan reads from the beginning only')
    const total = this.count()
    if (total === 0) return
    const consumer = this.#consumer()
    let seen = 0
    let fail!: (err: Error) => void
    const done = new Promise<void>((resolve, reject) => {
      fail = reject
      consumer.on('crash', reject)
      consumer.subscribe({ topics: [TOPIC], fromBeginning: true }).then(() => consumer.run({
        eachBatch: ({ batch }) => {
          for (const m of batch.messages) see(m.value!)
          seen += batch.messages.length
          if (seen >= total) resolve()
        },
      })).catch(reject)
    })
    // A consumer that stops delivering would otherwise hang the task until the suite's timeout.
    let last = -1
    const stall = setInterval(() => {
      if (seen === last) fail(new Error(`the consumer delivered nothing for ${STALL_MS} ms at ${seen}/${total} records`))
      last = seen
    }, STALL_MS)
    try {
      await done
    } finally {
      clearInterval(stall)
      await consumer.close()
    }
  }

  get(): never {
    throw new Error('the clients have no point read')
  }

  async follow(from: number, onRecord: (value: Value) => void): Promise<Follower> {
    if (from !== 0) throw new Error('the client follower starts from the beginning only')
    const consumer = this.#consumer()
    let failure: Error | null = null
    consumer.on('crash', (err: Error) => { failure = err })
    await consumer.subscribe({ topics: [TOPIC], fromBeginning: true })
    await consumer.run({ eachMessage: ({ message }) => { onRecord(message.value!) } })
    return {
      stop: async () => {
        await consumer.close()
        if (failure !== null) throw failure
      },
    }
  }

  /** A consumer of a group never used before: a group that committed would resume, not start over. */
  #consumer(): Consumer {
    return this.#log.consumer({ groupId: `bench-${randomUUID()}`, autoOffsetReset: 'earliest' })
  }

  async close(): Promise<void> {
    // Log.close closes the producers (flushing them) and any consumer still open.
    await this.#log.close()
  }
}

export const strandClient: System = {
  name: 'strand-client',
  label: 'strand (clients: producer.send / group consumer)',
  role: 'strand',
  settings: { process: "flush 'os', client defaults", power: "flush 'always', 64 producers, acks 'all'" },
  equalDurability: true,
  unsupported: {
    W4: 'no point read in the clients (a consumer seeks, then fetches); see strand (engine)',
    W6: 'same files and open path as strand (engine)',
  },
  async open(options: OpenOptions) {
    const { log } = await openLog(options)
    return new ClientStore(log, Math.max(1, options.writers ?? 1))
  },
}
