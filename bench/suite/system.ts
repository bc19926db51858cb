/**
 * The one interface every benchmarked system implements: strand's adapters (bench/suite/strand.ts,
 * strand-client.ts) and the peers (bench/peers/*.ts). The workloads (bench/suite/workloads.ts)
 * only ever talk to a `Store`, so each system runs exactly the same loops.
 *
 * A store holds records numbered 0, 1, 2, … in append order: strand's offsets, sqlite's and
 * lmdb's integer keys, level's big-endian keys, hypercore's block indexes, raw's position / size.
 */

/** What an acknowledged append must survive, and so which settings a system opens with. */
export type Durability =
  /** A process crash: the bytes are in the page cache (strand flush 'os', no fsync). W1, W3–W6. */
  | 'process'
  /** Power loss: the bytes are fsync'ed before the append resolves. W2. */
  | 'power'

export interface OpenOptions {
  /** An existing or empty directory that belongs to this store alone. */
  dir: string
  valueBytes: number
  durability: Durability
  /**
   * How many writers will append concurrently (W2 runs 64). A client-based store may give
   * each its own producer; writer w appends batches w, w + writers, w + 2 × writers, …
   * @default 1
   */
  writers?: number
}

/** Records `first`, `first + 1`, … with their values, also laid out back to back in `bytes`. */
export interface Batch {
  readonly first: number
  readonly values: readonly Buffer[]
  /** The values concatenated: `values[k]` is `bytes.subarray(k * valueBytes, (k + 1) * valueBytes)`. */
  readonly bytes: Buffer
}

/** A value handed to a reader; valid until the reader's callback returns (some systems reuse buffers). */
export type Value = Uint8Array

/** A reader that is told about records as they are appended (W5). */
export interface Follower {
  stop(): Promise<void>
}

/**
 * A follower for a store with no change notification of its own: the store calls every
 * function in `wakers` after a commit, and each wake schedules one `drain` (a microtask) that
 * reads whatever is new. Several commits before the drain runs share it.
 */
export function wakeFollower(wakers: Set<() => void>, drain: () => void): Follower {
  let scheduled = false
  const run = (): void => {
    scheduled = false
    drain()
  }
  const wake = (): void => {
    if (!scheduled) {
      scheduled = true
      queueMicrotask(run)
    }
  }
  wakers.add(wake)
  wake()
  return { stop: async () => { wakers.delete(wake) } }
}

export interface Store {
  /**
   * Appends the batch as records `batch.first…`; resolves once it is acknowledged under the
   * open's durability. The batch's buffers may be reused once this resolves, not before.
   */
  append(batch: Batch): Promise<void> | void
  /** How many records the store holds. */
  count(): Promise<number> | number
  /** Calls `see` for every record from `from` to the end, in order. */
  scan(from: number, see: (value: Value) => void): Promise<void> | void
  /** The value of record `index`, or undefined when there is none. */
  get(index: number): Value | undefined | Promise<Value | undefined>
  /**
   * Calls `onRecord` for each record from `from` on as soon as a reader in this process can
   * see it, by the system's own change notification where it has one. Resolves once listening.
   */
  follow(from: number, onRecord: (value: Value) => void): Promise<Follower>
  close(): Promise<void> | void
}

/** The workloads, by the issue's numbering. */
export type WorkloadId = 'W1' | 'W2' | 'W3' | 'W4' | 'W5' | 'W6'

export interface System {
  /** Stable id used on the command line and in the JSON: `strand`, `sqlite`, … */
  readonly name: string
  /** Human label with the version, e.g. "better-sqlite3 12.9.0, WAL". */
  readonly label: string
  /** Strand itself, the raw limit, or a peer (only peers compete for "best peer"). */
  readonly role: 'strand' | 'raw' | 'peer'
  /** What `process` and `power` durability mean for this system, in a few words each. */
  readonly settings: { readonly [D in Durability]?: string }
  /**
   * False when this system's `power` setting is not the same guarantee as strand's flush
   * 'always' (it is reported in W2, but not compared with).
   */
  readonly equalDurability?: boolean
  /** Workloads it takes part in (default: all). */
  readonly workloads?: readonly WorkloadId[]
  /** Workloads it cannot do, with the reason printed in the table instead of a number. */
  readonly unsupported?: { readonly [W in WorkloadId]?: string }
  open(options: OpenOptions): Promise<Store>
}

/** What a peer module (bench/peers/NAME.ts) exports. */
export interface PeerModule {
  systems: System[]
}
