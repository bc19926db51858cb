/** Latency sampling shared by the benchmarks: random targets from a fixed seed, µs per call. */

/** Calls `fn` on `n` pseudo-random targets in [0, range) and returns the sorted latencies in µs. */
export function sampleLatencies(n: number, range: number, seed: number, fn: (target: number) => void): Float64Array {
  const lat = new Float64Array(n)
  let s = seed
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) & 0x7fffffff
    const target = s % range
    const t = process.hrtime.bigint()
    fn(target)
    lat[i] = Number(process.hrtime.bigint() - t) / 1000
  }
  return lat.sort()
}

/** The `p` quantile (0–1) of sorted samples. */
export function percentile(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]
}
