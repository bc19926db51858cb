/** A benchmark's guard against hanging: fail a workload that stops making progress. */

/** A workload that makes no progress for this long has lost records: fail instead of hanging. */
export const STALL_MS = 30_000

/** Resolves with `done`, or rejects once `progress()` has not moved for `stallMs`. */
export function unlessStalled<T>(done: Promise<T>, progress: () => number, what: string, stallMs = STALL_MS): Promise<T> {
  let last = -1
  let since = Date.now()
  let timer: NodeJS.Timeout
  const stalled = new Promise<never>((_, reject) => {
    timer = setInterval(() => {
      const p = progress()
      if (p !== last) {
        last = p
        since = Date.now()
      } else if (Date.now() - since > stallMs) {
        reject(new Error(`${what}: no progress for ${stallMs} ms at ${p} records`))
      }
    }, 500)
    // A workload that failed before awaiting this must not keep the process alive.
    timer.unref()
  })
  return Promise.race([done, stalled]).finally(() => clearInterval(timer))
}
