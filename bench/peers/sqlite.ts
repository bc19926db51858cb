/**
 * better-sqlite3 in WAL mode: one table `log (id INTEGER PRIMARY KEY, v BLOB)`, the rowid being
 * the record's index, one transaction per batch through a prepared INSERT.
 *
 * - `process` durability: `synchronous = OFF` (WAL never fsynced: the bytes are in the page
 *   cache when the commit returns, as with strand's flush 'os'). NORMAL, which also fsyncs the
 *   WAL at checkpoints, was about 15% slower here.
 * - `power` durability: `synchronous = FULL`: every commit fsyncs the WAL. Reported as `sqlite`.
 *   `sqlite-normal` runs W2 with `synchronous = NORMAL`, what most WAL users deploy: commits are
 *   not fsynced (only checkpoints are), so a power loss can take acknowledged commits. It is
 *   shown, not compared with.
 * - scan: `SELECT id, v … WHERE id >= ? ORDER BY id LIMIT 10000` pages with `.raw().all()`
 *   (faster here than `.iterate()`); get: a prepared `SELECT v WHERE id = ?` with `.pluck()`.
 * - follow: better-sqlite3 has no change notification (no update hook); the writer wakes the
 *   reader after each commit returns, in-process, and the reader selects the new rows.
 * - Synchronous API: writes run one at a time on the event loop, whatever the concurrency.
 */
import path from 'node:path'
import Database from 'better-sqlite3'
import { type Batch, type Durability, type Follower, type OpenOptions, type PeerModule, type Store, type System, type Value, wakeFollower } from '../suite/system.js'
import { versionOf } from './version.js'

/** Rows per scan query. */
const PAGE = 10_000
const VERSION = versionOf('better-sqlite3')

class SqliteStore implements Store {
  readonly #db: Database.Database
  readonly #insert: Database.Statement
  readonly #page: Database.Statement
  readonly #get: Database.Statement
  readonly #max: Database.Statement
  readonly #tx: (batch: Batch) => void
  readonly #listeners = new Set<() => void>()

  constructor(file: string, synchronous: 'OFF' | 'NORMAL' | 'FULL') {
    const db = this.#db = new Database(file)
    db.pragma('journal_mode = WAL')
    db.pragma(`synchronous = ${synchronous}`)
    db.exec('CREATE TABLE IF NOT EXISTS log (id INTEGER PRIMARY KEY, v BLOB NOT NULL)')
    this.#insert = db.prepare('INSERT INTO log (id, v) VALUES (?, ?)')
    this.#page = db.prepare('SELECT id, v FROM log WHERE id >= ? ORDER BY id LIMIT ?').raw()
    this.#get = db.prepare('SELECT v FROM log WHERE id = ?').pluck()
    this.#max = db.prepare('SELECT max(id) FROM log').pluck()
    const insert = this.#insert
    this.#tx = db.transaction((batch: Batch) => {
      const values = batch.values
      for (let k = 0; k < values.length; k++) insert.run(batch.first + k, values[k])
    })
  }

  append(batch: Batch): void {
    this.#tx(batch)
    for (const fn of this.#listeners) fn()
  }

  count(): number {
    const max = this.#max.get() as number | null
    return max === null ? 0 : max + 1
  }

  scan(from: number, see: (value: Value) => void): void {
    let next = from
    for (;;) {
      const rows = this.#page.all(next, PAGE) as Array<[number, Buffer]>
      if (rows.length === 0) return
      for (const row of rows) see(row[1])
      next = rows[rows.length - 1][0] + 1
    }
  }

  get(index: number): Value | undefined {
    return this.#get.get(index) as Buffer | undefined
  }

  async follow(from: number, onRecord: (value: Value) => void): Promise<Follower> {
    let next = from
    return wakeFollower(this.#listeners, () => {
      for (;;) {
        const rows = this.#page.all(next, PAGE) as Array<[number, Buffer]>
        if (rows.length === 0) return
        for (const row of rows) onRecord(row[1])
        next = rows[rows.length - 1][0] + 1
      }
    })
  }

  close(): void {
    this.#db.close()
  }
}

function sqliteSystem(name: string, power: 'FULL' | 'NORMAL'): System {
  const mode = (d: Durability) => d === 'power' ? power : 'OFF'
  return {
    name,
    label: `better-sqlite3 ${VERSION} (SQLite WAL, synchronous ${power === 'FULL' ? 'OFF / FULL' : 'NORMAL'})`,
    role: 'peer',
    settings: power === 'FULL'
      ? { process: 'WAL, synchronous OFF', power: 'WAL, synchronous FULL, one transaction per batch' }
      : { power: 'WAL, synchronous NORMAL: commits not fsynced (checkpoints are)' },
    equalDurability: power === 'FULL',
    workloads: power === 'FULL' ? undefined : ['W2'],
    async open(options: OpenOptions) {
      return new SqliteStore(path.join(options.dir, 'log.db'), mode(options.durability))
    },
  }
}

export const systems: PeerModule['systems'] = [sqliteSystem('sqlite', 'FULL'), sqliteSystem('sqlite-normal', 'NORMAL')]
