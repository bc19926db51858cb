/**
 * bench/replication.ts runs in --quick mode so that it cannot rot: it must exit 0 having
 * verified every run (ack offsets, the leader's LEO and HW, every follower's LEO and the
 * SHA-256 of its batches against the leader's). Nothing here looks at a timing.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { bounded, killHard, spawnChild, tempDir } from '../helpers.js'

/** Generous for a run that takes a few seconds alone: the suite may share the machine. */
const LIMIT_MS = 180_000

test('bench/replication.ts --quick exits 0 and verifies every run of the single node, in-process and TCP setups', async () => {
  const { dir, cleanup } = tempDir('strand-bench-replication-smoke-')
  const child = spawnChild('bench/replication.ts', ['--quick', '--dir', dir])
  child.proc.stdin!.end()
  try {
    const code = await bounded(new Promise<number | null>((resolve) => child.proc.once('exit', (c) => resolve(c))), LIMIT_MS, 'bench/replication.ts --quick')
    await child.closed
    const output = child.output()
    assert.is(code, 0, output)
    const summary = child.lines.find((l) => l.startsWith('verified: '))
    // 2 sizes × 5 rows (single, in-process and TCP with acks 1 and all), one run each.
    assert.ok(summary !== undefined && /^verified: 10 runs, every ack offset, leader LEO and HW, follower LEO and SHA-256 matched/.test(summary), output)
    for (const row of ['single node', '3 replicas, in-process 1', '3 replicas, in-process all', '3 replicas, TCP        1', '3 replicas, TCP        all']) {
      assert.ok(child.lines.filter((l) => l.startsWith(row)).length === 2, `not two "${row}" rows (1 KiB, 100 B) in:\n${output}`)
    }
    assert.ok(child.lines.some((l) => l.startsWith("acks='all' over TCP / single node, 1 KiB: ")), output)
  } finally {
    await killHard(child, 10_000)
    cleanup()
  }
})

test.run()
