/**
 * hypercore, the append-only log of the Holepunch stack (storage: hypercore-storage on
 * RocksDB). Every append also hashes its blocks into a Merkle tree and signs the new root: it
 * is a verifiable, replicable log, which costs more than a plain one.
 *
 * - `process` durability: `core.append(blocks)` per batch, 16 in flight (RocksDB's WAL is written
 *   with write(2), not fsynced).
 * - `power` durability: not offered: hypercore-storage writes RocksDB batches with default write
 *   options (no sync) and has no option to fsync a commit, so W2 shows "n/a" rather than a
 *   figure for a weaker guarantee.
 * - scan: `core.get` of 1000 blocks at a time, concurrently (1.4× faster here than
 *   `createReadStream`, 2× faster than one awaited get after another); get: `await core.get(i)`.
 * - W5: one-record appends, hashed and signed, reached about 5,800/s awaited one at a time here,
 *   under the 4,000/s W5 asks for once appends overlap: its W5 latency is mostly its backlog.
 * - follow: the core's `append` event, then `get` of the new blocks.
 */
import Hypercore from 'hypercore'
import type { Batch, Follower, OpenOptions, PeerModule, Store, Value } from '../suite/system.js'
import { versionOf } from './version.js'

/** Blocks requested at once by a scan. */
const SCAN_CHUNK = 1000

class HypercoreStore implements Store {
  readonly #core: Hypercore

  constructor(core: Hypercore) {
    this.#core = core
  }

  async append(batch: Batch): Promise<void> {
    const r = await this.#core.append(batch.values)
    if (r.length !== batch.first + batch.values.length) throw new Error(`batch of record ${batch.first} ended at length ${r.length}`)
  }

  count(): number {
    return this.#core.length
  }

  async scan(from: number, see: (value: Value) => void): Promise<void> {
    const core = this.#core
    const end = core.length
    for (let i = from; i < end; i += SCAN_CHUNK) {
      const blocks = await Promise.all(Array.from({ length: Math.min(SCAN_CHUNK, end - i) }, (_, k) => core.get(i + k, { wait: false })))
      // A missing block (null) is handed on as it is: the reader counts it as damage.
      for (const b of blocks) see(b as Value)
    }
  }

  async get(index: number): Promise<Value | undefined> {
    if (index >= this.#core.length) return undefined
    return (await this.#core.get(index, { wait: false })) ?? undefined
  }

  async follow(from: number, onRecord: (value: Value) => void): Promise<Follower> {
    const core = this.#core
    let next = from
    let draining = false
    const drain = async (): Promise<void> => {
      if (draining) return
      draining = true
      try {
        while (next < core.length) {
          const v = await core.get(next, { wait: false })
          if (v === null) break
          next++
          onRecord(v)
        }
      } finally {
        draining = false
      }
    }
    const onAppend = (): void => { drain().catch(() => {}) }
    core.on('append', onAppend)
    onAppend()
    return { stop: async () => { core.off('append', onAppend) } }
  }

  close(): Promise<void> {
    return this.#core.close()
  }
}

export const systems: PeerModule['systems'] = [{
  name: 'hypercore',
  label: `hypercore ${versionOf('hypercore')} (hypercore-storage ${versionOf('hypercore-storage')}, RocksDB)`,
  role: 'peer',
  settings: { process: 'append per batch (hashed, signed), RocksDB WAL without fsync' },
  unsupported: { W2: 'no fsync: hypercore-storage commits RocksDB writes without sync and has no option for it' },
  async open(options: OpenOptions) {
    const core = new Hypercore(options.dir)
    await core.ready()
    return new HypercoreStore(core)
  },
}]
