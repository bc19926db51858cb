/**
 * The benchmarks run in --quick mode so they cannot rot: each must exit 0 having verified
 * what it read. Nothing here looks at a timing.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { bounded, killHard, spawnChild, tempDir } from './helpers.js'

/** Generous for a run that takes a few seconds alone: the suite may share the machine. */
const LIMIT_MS = 180_000

async function runQuick(script: string, args: string[]): Promise<{ code: number | null, lines: string[], output: string }> {
  const { dir, cleanup } = tempDir('strand-bench-smoke-')
  const child = spawnChild(script, ['--quick', '--dir', dir, ...args])
  child.proc.stdin!.end()
  try {
    const code = await bounded(new Promise<number | null>((resolve) => child.proc.once('exit', (c) => resolve(c))), LIMIT_MS, `${script} --quick`)
    await child.closed
    return { code, lines: child.lines, output: child.output() }
  } finally {
    await killHard(child, 10_000)
    cleanup()
  }
}

test('bench/produce-consume.ts --quick exits 0 and every workload verifies count, order and payload sum', async () => {
  const r = await runQuick('bench/produce-consume.ts', [])
  assert.is(r.code, 0, r.output)
  const summary = r.lines.find((l) => l.startsWith('verified: '))
  assert.ok(summary !== undefined && /^verified: \d+ reads, every count, order and payload sum matched/.test(summary), r.output)
  // Every table row and both latency paths printed, so no workload was skipped silently.
  for (const row of ['raw append', 'produce send×1000', 'consume eachMessage', 'e2e eachBatch', 'send → eachMessage']) {
    assert.ok(r.lines.some((l) => l.startsWith(row)), `no "${row}" line in:\n${r.output}`)
  }
})

test('bench/engine.ts --quick exits 0 (it throws if a read-back does not match)', async () => {
  const r = await runQuick('bench/engine.ts', ['--policy', 'os'])
  assert.is(r.code, 0, r.output)
  assert.ok(r.lines.some((l) => l.startsWith('os ')), r.output)
})

test.run()
