/** Shared test helpers: real temp directories that clean up, and an injectable clock. */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import type { Clock } from '../lib/partition.js'

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
