/**
 * Runs one task in a child process (bench/suite/child.ts) and collects what it reports. A
 * W6 kill-writer is SIGKILLed as soon as it says `ready`; every other child must exit 0 with a
 * result within the time limit, or the task fails with its last words.
 */
import { spawn } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import type { ChildMessage } from './child.js'
import type { Task } from './plan.js'
import type { TaskResult } from './workloads.js'

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url))
const CHILD = fileURLToPath(new URL('./child.ts', import.meta.url))

export interface RunOptions {
  /** Kill the child and fail the task after this long. */
  timeoutMs: number
  /** Write CPU profiles of the child under this directory, one subdirectory per task (node --cpu-prof). */
  profileDir?: string
  onProgress?: (fraction: number) => void
}

export type TaskOutcome =
  | { ok: true, result: TaskResult }
  /** A kill-writer, killed as planned after acknowledging `acked` records. */
  | { ok: true, killed: true, acked: number }
  | { ok: false, error: string }

/** Runs `task`, or with 'baseline' a child that loads the suite and does nothing (the RSS floor). */
export function runChild(task: Task | 'baseline', options: RunOptions): Promise<TaskOutcome> {
  const execArgv = ['--import', 'tsx']
  if (options.profileDir !== undefined && task !== 'baseline') {
    // One directory per task: node writes a profile per thread (tsx's loader has its own), and
    // the main thread's is the one with the workload in it.
    const name = `${task.workload}-${task.system}-${task.phase ?? task.case}`.replace(/[^a-zA-Z0-9.-]+/g, '_')
    execArgv.push('--cpu-prof', '--cpu-prof-dir', path.join(options.profileDir, name))
  }
  const child = spawn(process.execPath, [...execArgv, path.relative(REPO_ROOT, CHILD), task === 'baseline' ? task : JSON.stringify(task)], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  })
  let output = ''
  const keep = (chunk: Buffer): void => {
    // The last few KiB are what explains a failure.
    output = (output + chunk.toString('utf8')).slice(-8192)
  }
  child.stdout!.on('data', keep)
  child.stderr!.on('data', keep)
  let outcome: TaskOutcome | null = null
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      outcome ??= { ok: false, error: `no result within ${Math.round(options.timeoutMs / 1000)} s` }
      child.kill('SIGKILL')
    }, options.timeoutMs)
    child.on('message', (m: ChildMessage) => {
      if (m.type === 'progress') options.onProgress?.(m.fraction)
      else if (m.type === 'ready') {
        outcome ??= { ok: true, killed: true, acked: m.acked }
        child.kill('SIGKILL')
      } else if (m.type === 'result') outcome ??= { ok: true, result: m.result }
      else if (m.type === 'error') outcome ??= { ok: false, error: m.message }
    })
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      if (outcome === null) outcome = { ok: false, error: `exited (code ${code}, signal ${signal}) without a result` }
      else if (outcome.ok && !('killed' in outcome) && code !== 0) outcome = { ok: false, error: `exited with code ${code} after its result` }
      if (!outcome.ok && output.trim() !== '') outcome = { ok: false, error: `${outcome.error}\n${output.trim()}` }
      resolve(outcome)
    })
  })
}
