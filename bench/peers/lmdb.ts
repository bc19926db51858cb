/**
 * lmdb-js with ordered integer keys (`keyEncoding: 'uint32'`, LMDB's native integer keys) and
 * binary values, no compression.
 *
 * - `process` durability: `noSync: true`; each batch is one `transactionSync` (the fastest
 *   write path measured here: about 1.7× lmdb-js's batched async `put`s; its async
 *   `transaction(callback)` with 16 in flight stalled outright with noSync).
 * - `power` durability: lmdb-js defaults (sync on commit, overlappingSync): each batch is a
 *   run of async `put`s, which lmdb-js gathers per event-loop turn into one transaction on its
 *   write thread (its group commit across the 64 writers); a batch is acknowledged once its
 *   put resolved (committed) and `db.flushed` resolved (the commit is fsynced).
 * - scan: `getRange({ start })`; get: `getBinaryFast` (a buffer reused by the next get: the
 *   fastest read lmdb-js has, read through LMDB's memory map).
 * - follow: lmdb-js has no change notification (its only event is `beforecommit`); the writer
 *   wakes the reader after each commit, in-process, and the reader gets the new keys.
 */
import path from 'node:path'
import { open, type RootDatabase } from 'lmdb'
import { type Batch, type Follower, type OpenOptions, type PeerModule, type Store, type Value, wakeFollower } from '../suite/system.js'
import { versionOf } from './version.js'

class LmdbStore implements Store {
  readonly #db: RootDatabase<Buffer, number>
  readonly #durable: boolean
  readonly #listeners = new Set<() => void>()

  constructor(file: string, options: OpenOptions) {
    this.#durable = options.durability === 'power'
    this.#db = open<Buffer, number>({ path: file, keyEncoding: 'uint32', encoding: 'binary', compression: false, noSync: !this.#durable })
  }

  append(batch: Batch): Promise<void> | void {
    const db = this.#db
    const { first, values } = batch
    if (!this.#durable) {
      db.transactionSync(() => {
        for (let k = 0; k < values.length; k++) db.put(first + k, values[k])
      })
      for (const fn of this.#listeners) fn()
      return
    }
    let last: Promise<boolean> | undefined
    for (let k = 0; k < values.length; k++) last = db.put(first + k, values[k])
    return (async () => {
      await last
      await db.flushed
      for (const fn of this.#listeners) fn()
    })()
  }

  count(): number {
    for (const key of this.#db.getKeys({ reverse: true, limit: 1 })) return key + 1
    return 0
  }

  scan(from: number, see: (value: Value) => void): void {
    for (const { value } of this.#db.getRange({ start: from })) see(value)
  }

  get(index: number): Value | undefined {
    return this.#db.getBinaryFast(index)
  }

  async follow(from: number, onRecord: (value: Value) => void): Promise<Follower> {
    let next = from
    return wakeFollower(this.#listeners, () => {
      for (let v = this.#db.getBinaryFast(next); v !== undefined; v = this.#db.getBinaryFast(next)) {
        next++
        onRecord(v)
      }
    })
  }

  close(): Promise<void> {
    return this.#db.close()
  }
}

export const systems: PeerModule['systems'] = [{
  name: 'lmdb',
  label: `lmdb-js ${versionOf('lmdb')} (uint32 keys)`,
  role: 'peer',
  settings: { process: 'noSync, transactionSync per batch', power: 'sync commits (defaults), async puts batched per turn, await flushed' },
  equalDurability: true,
  async open(options) {
    return new LmdbStore(path.join(options.dir, 'data.mdb'), options)
  },
}]
