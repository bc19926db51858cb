/**
 * One task in its own process (spawned by bench/suite/runner.ts with an IPC channel): loads the
 * system, runs the workload, sends `{ type: 'result' }` or `{ type: 'error' }` and exits. Its
 * peak RSS is therefore this task's alone. Progress and W6's `ready` go over the same channel.
 *
 *   node --import tsx bench/suite/child.ts '<task JSON>'
 *   node --import tsx bench/suite/child.ts baseline    # loads the suite, runs nothing: the RSS floor
 */
import type { Task } from './plan.js'
import { loadSystem } from './systems.js'
import { runTask } from './workloads.js'

export type ChildMessage =
  | { type: 'progress', fraction: number }
  | { type: 'ready', acked: number }
  | { type: 'result', result: import('./workloads.js').TaskResult }
  | { type: 'error', message: string }

function send(m: ChildMessage): Promise<void> {
  return new Promise((resolve) => {
    if (process.send === undefined) {
      process.stdout.write(JSON.stringify(m) + '\n', () => resolve())
      return
    }
    process.send(m, undefined, {}, () => resolve())
  })
}

// Orphaned (the suite was killed): stop at once rather than run on unobserved.
process.on('disconnect', () => process.exit(3))

let lastProgress = 0
try {
  if (process.argv[2] === 'baseline') {
    await send({ type: 'result', result: { peakRssBytes: process.resourceUsage().maxRSS * 1024, verified: { records: 0, checksum: 0, what: 'nothing' } } })
    process.exit(0)
  }
  const task = JSON.parse(process.argv[2]) as Task
  const system = await loadSystem(task.system)
  const result = await runTask(task, system, {
    progress: (fraction) => {
      const now = Date.now()
      if (now - lastProgress < 200) return
      lastProgress = now
      void send({ type: 'progress', fraction })
    },
    ready: (acked) => { void send({ type: 'ready', acked }) },
  })
  await send({ type: 'result', result })
  process.exit(0)
} catch (err) {
  await send({ type: 'error', message: err instanceof Error ? err.stack ?? err.message : String(err) })
  process.exit(1)
}
