/** Shared test helpers: real temp directories that clean up, and an injectable clock. */
import { spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import * as assert from 'uvu/assert'
import type { Clock } from '../lib/partition.js'
import { type ErrorCode, StrandError } from '../lib/errors.js'

/** A fresh directory under the OS temp dir; `cleanup()` removes it. */
export function tempDir(prefix = 'strand-test-'): { dir: string, cleanup: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix))
  return { dir, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) }
}

/** Runs `fn` with a temp dir that is removed afterwards, pass or fail. */
export async function withTempDir<T>(fn: (dir: string) => Promise<T> | T): Promise<T> {
  const { dir, cleanup } = tempDir()
  try {
    return await fn(dir)
  } finally {
    cleanup()
  }
}

/** A clock that only moves when told to. */
export class ManualClock implements Clock {
  constructor(public time = 1_700_000_000_000) {}
  now(): number { return this.time }
  advance(ms: number): void { this.time += ms }
}

/** Deterministic pseudo-random numbers (mulberry32), so a failing case can be replayed from its seed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

// --- child processes ---------------------------------------------------------------------


export const REPO_ROOT = fileURLToPath(new URL('../', import.meta.url))

/** A TypeScript script run as a real child process, with its output collected line by line. */
export interface Child {
  proc: ChildProcess
  /** Whole lines the child has written to stdout so far. */
  lines: string[]
  /** Everything it wrote, stdout then stderr, for failure messages. */
  output: () => string
  /** Resolves after exit, once both pipes are drained. */
  closed: Promise<void>
}

/** Runs `script` (a .ts file) under tsx with `args`; stdin stays open so the child can watch it. */
export function spawnChild(script: string, args: string[]): Child {
  const proc = spawn(process.execPath, ['--import', 'tsx', script, ...args], { cwd: REPO_ROOT, stdio: ['pipe', 'pipe', 'pipe'] })
  const lines: string[] = []
  let partial = ''
  let out = ''
  let err = ''
  proc.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk
    const parts = (partial + chunk).split('\n')
    partial = parts.pop()!
    lines.push(...parts)
  })
  proc.stderr!.setEncoding('utf8').on('data', (chunk: string) => { err += chunk })
  const closed = new Promise<void>((resolve) => proc.once('close', () => resolve()))
  return { proc, lines, output: () => out + (err === '' ? '' : `\n[stderr] ${err}`), closed }
}

/** `p`, or a rejection naming `what` after `ms`: no test waits without a bound. */
export function bounded<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms) }),
  ])
}

/** Resolves once the child has printed a line matching `match`; rejects if it exits first. */
export function waitForLine(child: Child, match: (line: string) => boolean, ms: number, what: string): Promise<string> {
  return bounded(new Promise<string>((resolve, reject) => {
    const check = () => {
      const line = child.lines.find(match)
      if (line !== undefined) done(undefined, line)
    }
    const onExit = (code: number | null, signal: string | null) =>
      done(new Error(`${what}: child exited (code ${code}, signal ${signal}) first: ${child.output()}`))
    const done = (err?: Error, line?: string) => {
      child.proc.stdout!.off('data', check)
      child.proc.off('exit', onExit)
      if (err) reject(err)
      else resolve(line!)
    }
    child.proc.stdout!.on('data', check)
    child.proc.once('exit', onExit)
    check()
  }), ms, what)
}

/** SIGKILLs the child (if still running) and waits for it to be gone. */
export async function killHard(child: Child, ms: number): Promise<void> {
  if (child.proc.exitCode === null && child.proc.signalCode === null) child.proc.kill('SIGKILL')
  await bounded(child.closed, ms, `child ${child.proc.pid} exit after SIGKILL`)
}

// --- errors --------------------------------------------------------------------------------

/**
 * Awaits `p` (a promise, or a function whose call or returned promise may fail) and asserts it
 * fails with a StrandError of `code`, within `timeoutMs`. Returns the error.
 */
export async function expectCode(p: Promise<unknown> | (() => unknown), code: ErrorCode, what: string, timeoutMs = 30_000): Promise<StrandError> {
  try {
    await bounded(Promise.resolve().then(typeof p === 'function' ? p : () => p), timeoutMs, what)
  } catch (err) {
    assert.instance(err, StrandError, `${what}: ${(err as Error).message}`)
    assert.is((err as StrandError).code, code, `${what}: ${(err as Error).message}`)
    return err as StrandError
  }
  assert.unreachable(`${what}: expected ${code}`)
  throw new Error('unreachable')
}
