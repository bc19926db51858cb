/**
 * classic-level (LevelDB) with 4-byte big-endian keys (so the key order is the record order)
 * and Buffer values; Snappy left on, its default (the payloads are incompressible, so it
 * stores them as they are).
 *
 * - `process` durability: `db.batch(ops)` per batch (LevelDB appends to its log with write(2),
 *   no fsync), 16 in flight.
 * - `power` durability: `db.batch(ops, { sync: true })` (fsync of the log per write; LevelDB
 *   merges queued writers into one write and one fsync: its group commit across the 64 writers).
 * - scan: a values iterator from the key, `nextv(1000)` at a time; get: `getSync`.
 * - follow: abstract-level's `write` event, then `getSync` of the new keys.
 */
import type { EventEmitter } from 'node:events'
import { ClassicLevel } from 'classic-level'
import type { Batch, Follower, OpenOptions, PeerModule, Store, Value } from '../suite/system.js'
import { versionOf } from './version.js'

type Db = ClassicLevel<Buffer, Buffer>

function keyOf(i: number): Buffer {
  const k = Buffer.allocUnsafe(4)
  k.writeUInt32BE(i, 0)
  return k
}

class LevelStore implements Store {
  readonly #db: Db
  readonly #sync: boolean

  constructor(db: Db, options: OpenOptions) {
    this.#db = db
    this.#sync = options.durability === 'power'
  }

  append(batch: Batch): Promise<void> {
    const { first, values } = batch
    const keys = Buffer.allocUnsafe(4 * values.length)
    const ops = new Array<{ type: 'put', key: Buffer, value: Buffer }>(values.length)
    for (let k = 0; k < values.length; k++) {
      keys.writeUInt32BE(first + k, 4 * k)
      ops[k] = { type: 'put', key: keys.subarray(4 * k, 4 * k + 4), value: values[k] }
    }
    return this.#db.batch(ops, { sync: this.#sync })
  }

  async count(): Promise<number> {
    const last = await this.#db.keys({ reverse: true, limit: 1 }).all()
    return last.length === 0 ? 0 : last[0].readUInt32BE(0) + 1
  }

  async scan(from: number, see: (value: Value) => void): Promise<void> {
    const it = this.#db.values({ gte: keyOf(from) })
    try {
      for (;;) {
        const values = await it.nextv(1000)
        if (values.length === 0) return
        for (const v of values) see(v)
      }
    } finally {
      await it.close()
    }
  }

  get(index: number): Value | undefined {
    return this.#db.getSync(keyOf(index))
  }

  async follow(from: number, onRecord: (value: Value) => void): Promise<Follower> {
    let next = from
    const drain = (): void => {
      for (let v = this.get(next); v !== undefined; v = this.get(next)) {
        next++
        onRecord(v)
      }
    }
    const emitter = this.#db as unknown as EventEmitter
    emitter.on('write', drain)
    drain()
    return { stop: async () => { emitter.off('write', drain) } }
  }

  close(): Promise<void> {
    return this.#db.close()
  }
}

export const systems: PeerModule['systems'] = [{
  name: 'level',
  label: `classic-level ${versionOf('classic-level')} (LevelDB)`,
  role: 'peer',
  settings: { process: 'batch per batch, sync false', power: 'batch per batch, sync true, 64 writers' },
  equalDurability: true,
  async open(options) {
    const db: Db = new ClassicLevel<Buffer, Buffer>(options.dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' })
    await db.open()
    return new LevelStore(db, options)
  },
}]
