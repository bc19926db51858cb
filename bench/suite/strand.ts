/**
 * strand through its engine API, the way an application that owns its batches uses it: one
 * topic of one partition; `Partition.append` of whole batches (1000 × 100 B or 200 × 1 KiB);
 * `Partition.read` of 1 MiB at a time into one reused buffer for scans (checksums verified,
 * the default);
 * `Partition.readRecord` for point reads (a batch is verified whole on its first point read);
 * an append listener for tailing. Flush 'os' for `process` durability, 'always' (group commit) for `power`.
 */
import { Log, type Partition, type RecordInput } from '../../lib/index.js'
import type { Batch, Follower, OpenOptions, Store, System, Value } from './system.js'

export const TOPIC = 'bench'
/** Bytes per scan read: large reads, as the consumer's fetch (1 MiB per partition). */
const SCAN_BYTES = 1024 * 1024

/** Opens (or creates) the suite's topic in `dir` with the flush policy `durability` asks for. */
export async function openLog(options: OpenOptions): Promise<{ log: Log, partition: Partition }> {
  const log = await Log.open(options.dir, { retentionCheckIntervalMs: 0 })
  try {
    const flush = options.durability === 'power' ? 'always' as const : 'os' as const
    if (!log.hasTopic(TOPIC)) await log.createTopic(TOPIC, { partitions: 1, config: { flush, retentionMs: -1 } })
    return { log, partition: log.topic(TOPIC).partition(0) }
  } catch (err) {
    await log.close().catch(() => {})
    throw err
  }
}

/**
 * Reads `p` from `from` to its end, 1 MiB at a time, handing each value to `see`. One read
 * buffer serves the whole scan (`ReadOptions.buffer`): `see` checks each value before the
 * next read overwrites it, and keeps none.
 */
export function scanPartition(p: Partition, from: number, see: (value: Value) => void): void {
  let offset = Math.max(from, p.logStartOffset)
  const end = p.logEndOffset
  // Room for the index interval walked before the data (see ReadOptions.buffer).
  const buffer = Buffer.allocUnsafe(SCAN_BYTES + 64 * 1024)
  while (offset < end) {
    const r = p.read(offset, { maxBytes: SCAN_BYTES, buffer })
    for (const b of r.batches) {
      for (const rec of b.records(offset)) see(rec.value!)
    }
    if (r.nextOffset <= offset) throw new Error(`read at ${offset} made no progress (log end ${end})`)
    offset = r.nextOffset
  }
}

class StrandStore implements Store {
  readonly #log: Log
  readonly #p: Partition
  /** Record objects per payload slot: the slot's buffers are restamped in place, so these stay valid. */
  readonly #records = new WeakMap<readonly Buffer[], RecordInput[]>()

  constructor(log: Log, p: Partition) {
    this.#log = log
    this.#p = p
  }

  append(batch: Batch): Promise<void> {
    let records = this.#records.get(batch.values)
    if (records === undefined) this.#records.set(batch.values, records = batch.values.map((value) => ({ value })))
    const first = batch.first
    return this.#p.append(records).then((r) => {
      if (r.baseOffset !== first) throw new Error(`batch of record ${first} appended at offset ${r.baseOffset}`)
    })
  }

  count(): number {
    return this.#p.logEndOffset - this.#p.logStartOffset
  }

  scan(from: number, see: (value: Value) => void): void {
    scanPartition(this.#p, from, see)
  }

  get(index: number): Value | undefined {
    if (index >= this.#p.logEndOffset) return undefined
    return this.#p.readRecord(index)?.value ?? undefined
  }

  async follow(from: number, onRecord: (value: Value) => void): Promise<Follower> {
    const p = this.#p
    let next = from
    let scheduled = false
    // The listener runs inside append: it only schedules the read, as a reader on its own would.
    const drain = (): void => {
      scheduled = false
      while (next < p.logEndOffset) {
        const r = p.read(next)
        for (const b of r.batches) for (const rec of b.records(next)) onRecord(rec.value!)
        next = r.nextOffset
      }
    }
    const listener = (): void => {
      if (!scheduled) {
        scheduled = true
        queueMicrotask(drain)
      }
    }
    p.addAppendListener(listener)
    if (next < p.logEndOffset) listener()
    return { stop: async () => p.removeAppendListener(listener) }
  }

  close(): Promise<void> {
    return this.#log.close()
  }
}

export const strand: System = {
  name: 'strand',
  label: 'strand (engine: Partition.append / read)',
  role: 'strand',
  settings: { process: "flush 'os'", power: "flush 'always', group commit, 64 appends in flight" },
  equalDurability: true,
  async open(options) {
    const { log, partition } = await openLog(options)
    return new StrandStore(log, partition)
  },
}
