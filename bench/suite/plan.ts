/**
 * What a suite run measures: the workloads' sizes and parameters (full or --quick), the rows
 * of the report, and the child-process tasks that fill them, in the order they run.
 *
 * One task = one child process = one (workload × system × case × run), so each row's peak RSS
 * is its own. W3 and W4 read the data set a W1 task of the same system, size and run wrote
 * (run for that purpose even when W1 itself is filtered out); W6 runs four tasks per system:
 * build the ~1 GiB log and close it, open it, append and get SIGKILLed, open it again.
 */
import path from 'node:path'
import type { WorkloadId } from './system.js'

export interface SizeSpec {
  /** Row label: '100 B' or '1 KiB'. */
  label: string
  valueBytes: number
  records: number
  /** Records per append batch (and per transaction for the peers). */
  perBatch: number
}

/** Everything that differs between a full run and --quick. */
export interface Parameters {
  sizes: SizeSpec[]
  /** Times W1–W5 run (interleaved, each in fresh children); a row shows the median run. */
  runs: number
  /** Records each throughput child first runs through a scratch store, untimed (JIT, caches). */
  warmupFraction: number
  /** Appends in flight for W1 and W6's build (asynchronous systems only). */
  inFlight: number
  /** Concurrent writers in W2, each awaiting its batch's durable acknowledgement. */
  writers: number
  /** W4: random point reads. */
  lookups: number
  /** W5: records timed after `latencyWarmup` untimed ones, one every `intervalUs`. */
  latencySamples: number
  latencyWarmup: number
  intervalUs: number
  /** W6: the log to open (1 KiB records). */
  openLog: SizeSpec
  /** W6: records the SIGKILLed writer has acknowledged when it is killed. */
  killAfter: number
}

export function parameters(quick: boolean): Parameters {
  const scale = quick ? 0.02 : 1
  return {
    sizes: [
      { label: '100 B', valueBytes: 100, records: Math.round(1_000_000 * scale), perBatch: 1000 },
      { label: '1 KiB', valueBytes: 1024, records: Math.round(200_000 * scale), perBatch: 200 },
    ],
    runs: quick ? 1 : 3,
    warmupFraction: 0.1,
    inFlight: 16,
    writers: 64,
    lookups: quick ? 2_000 : 100_000,
    latencySamples: quick ? 300 : 10_000,
    latencyWarmup: quick ? 100 : 1_000,
    intervalUs: 250,
    openLog: { label: quick ? '20 MiB' : '1 GiB', valueBytes: 1024, records: quick ? 20_000 : 1_000_000, perBatch: 200 },
    killAfter: quick ? 2_000 : 32_000,
  }
}

export type W6Phase = 'build' | 'open-clean' | 'kill-writer' | 'open-killed'

/** One child process's job; serialised to JSON on its command line. */
export interface Task {
  workload: WorkloadId
  system: string
  /** The row's case: the size label, or W6's phase. */
  case: string
  phase?: W6Phase
  size: SizeSpec
  /** The store's directory (W1's for W3/W4, shared by W6's phases). */
  dir: string
  /** False for a W1 run only there to build W3/W4's data set. */
  report: boolean
  /** Which repetition of W1–W5 this is (0 for W6). */
  run: number
  warmupFraction: number
  inFlight: number
  writers: number
  lookups: number
  latencySamples: number
  latencyWarmup: number
  intervalUs: number
  killAfter: number
  /** W6 opens: records the log held when built, and the fewest it may hold now. */
  built?: number
  atLeast?: number
}

/** A report row's identity. */
export interface RowKey {
  workload: WorkloadId
  case: string
  system: string
}

export const WORKLOADS: ReadonlyArray<{ id: WorkloadId, title: string }> = [
  { id: 'W1', title: 'append, batched, no fsync' },
  { id: 'W2', title: 'durable append: fsync per batch or commit' },
  { id: 'W3', title: 'sequential read of everything from the start' },
  { id: 'W4', title: 'random point reads by offset / key' },
  { id: 'W5', title: 'append → tailing reader latency' },
  { id: 'W6', title: 'open time of a large log' },
]

export const W6_CASES: ReadonlyArray<{ phase: W6Phase, case: string } | { phase: 'kill-writer', case: null }> = [
  { phase: 'build', case: 'build' },
  { phase: 'open-clean', case: 'open after clean close' },
  { phase: 'kill-writer', case: null },
  { phase: 'open-killed', case: 'open after kill -9' },
]

export interface PlanOptions {
  params: Parameters
  root: string
  workloads: ReadonlySet<WorkloadId>
  /** Systems to run, in report order, with the workloads each takes part in. */
  systems: ReadonlyArray<{ name: string, runs: (w: WorkloadId) => boolean }>
  sizes: ReadonlySet<number>
}

/** The tasks, in the order they run. */
export function planTasks(o: PlanOptions): Task[] {
  const p = o.params
  const tasks: Task[] = []
  const base = {
    inFlight: p.inFlight, writers: p.writers, lookups: p.lookups, latencySamples: p.latencySamples,
    latencyWarmup: p.latencyWarmup, intervalUs: p.intervalUs, killAfter: p.killAfter, report: true,
    warmupFraction: p.warmupFraction, run: 0,
  }
  const want = (w: WorkloadId) => o.workloads.has(w)
  // Systems side by side within each workload, and runs interleaved, so that a change in the
  // machine's load hits every system alike.
  for (let run = 0; run < p.runs; run++) {
    for (const size of p.sizes.filter((s) => o.sizes.has(s.valueBytes))) {
      const at = { ...base, run, case: size.label, size }
      const dataDir = (system: string) => path.join(o.root, `data-${size.valueBytes}-${system}`)
      for (const s of o.systems) {
        const reads = (want('W3') && s.runs('W3')) || (want('W4') && s.runs('W4'))
        const report = want('W1') && s.runs('W1')
        if (report || reads) tasks.push({ ...at, workload: 'W1', system: s.name, dir: dataDir(s.name), report })
      }
      for (const w of ['W3', 'W4'] as const) {
        if (!want(w)) continue
        for (const s of o.systems) if (s.runs(w)) tasks.push({ ...at, workload: w, system: s.name, dir: dataDir(s.name) })
      }
      if (!want('W2')) continue
      for (const s of o.systems) {
        if (s.runs('W2')) tasks.push({ ...at, workload: 'W2', system: s.name, dir: path.join(o.root, `w2-${size.valueBytes}-${s.name}`) })
      }
    }
  }
  if (want('W5')) {
    const size = { ...p.sizes[0], records: p.latencyWarmup + p.latencySamples, perBatch: 1 }
    for (let run = 0; run < p.runs; run++) {
      for (const s of o.systems) if (s.runs('W5')) tasks.push({ ...base, run, workload: 'W5', system: s.name, case: size.label, size, dir: path.join(o.root, `w5-${s.name}`) })
    }
  }
  if (want('W6')) {
    for (const s of o.systems) {
      if (!s.runs('W6')) continue
      for (const c of W6_CASES) {
        tasks.push({ ...base, workload: 'W6', system: s.name, case: c.case ?? 'kill -9 writer', phase: c.phase, size: p.openLog, dir: path.join(o.root, `w6-${s.name}`), report: c.case !== null })
      }
    }
  }
  return tasks
}

export function taskName(t: Task): string {
  return `${t.workload} ${t.system} ${t.case}${t.report ? '' : ' (data set)'}${t.run > 0 ? ` (run ${t.run + 1})` : ''}`
}
