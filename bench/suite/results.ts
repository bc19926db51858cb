/**
 * The results file (bench/results/latest.json, docs/benchmarks.json): what a run measured,
 * with everything needed to redraw its table and chart without running again.
 */
import type { Parameters } from './plan.js'
import type { Durability, WorkloadId } from './system.js'
import type { TaskResult } from './workloads.js'

export const SCHEMA = 1

export type RowStatus =
  | 'ok'
  /** The system cannot do this workload (reason says why): not a failure. */
  | 'n/a'
  /** The system's packages are not usable on this machine: not a failure. */
  | 'unavailable'
  /** The task crashed, timed out or read something other than what was written. */
  | 'failed'

export interface Row {
  workload: WorkloadId
  case: string
  system: string
  status: RowStatus
  reason?: string
  /** Records written or read (throughput), or samples (latency). */
  records?: number
  valueBytes?: number
  seconds?: number
  recordsPerSec?: number
  /** Payload megabytes (10^6) per second. */
  mbPerSec?: number
  latencyUs?: TaskResult['latencyUs']
  openMs?: number
  peakRssBytes?: number
  verified?: TaskResult['verified']
  /** The headline figure of every run (rec/s, p99 µs or open ms); the row's numbers are the median run's. */
  runs?: number[]
  /** Filled by the report: speed relative to the best peer of the group (> 1: faster). */
  vsBestPeer?: number
  bestPeer?: string
  /** Speed relative to the raw limit (≤ 1 in principle). */
  vsRaw?: number
}

export interface SystemInfo {
  name: string
  label: string
  role: 'strand' | 'raw' | 'peer'
  settings: { [D in Durability]?: string }
  equalDurability: boolean
}

export interface Target {
  id: string
  text: string
  /** What was measured, in words with the numbers. */
  measured: string
  /** null: could not be judged (a row missing, or a --quick run). */
  met: boolean | null
}

export interface Results {
  schema: typeof SCHEMA
  command: string
  startedAt: string
  seconds: number
  quick: boolean
  machine: { node: string, platform: string, cpus: number, cpuModel: string, memGiB: number, loadBefore: number[], loadAfter: number[] }
  /** Peak RSS of a child that loads the suite and does nothing: every row's floor. */
  baselineRssBytes: number
  peersInstall: { ok: boolean, seconds: number, error?: string } | null
  parameters: Parameters
  systems: SystemInfo[]
  unavailable: { [system: string]: string }
  rows: Row[]
  targets: Target[]
}
