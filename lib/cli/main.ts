#!/usr/bin/env node
/**
 * The `strand` executable (package.json "bin"). It runs the command line, program.ts, in a
 * child Node process started with V8's `--no-concurrent-recompilation`, and exits as the child
 * does.
 *
 * Why: Node 20 can deadlock when its main thread waits for V8's background threads — in
 * `NodePlatform::DrainTasks` when the event loop runs empty, or in the platform shutdown of
 * `process.exit` — while a background Turbofan job waits for the main thread to collect garbage
 * (nodejs/node#54918). A short command that loads strand and exits hung that way, forever,
 * about once in a hundred runs on a loaded machine (4 of 320 in a stress run; 0 of 800 with
 * the flag). Optimizing on the main thread leaves no background job that waits for it. V8 flags
 * only take effect at startup, hence the relaunch, which costs one Node startup.
 */
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const FLAG = '--no-concurrent-recompilation'

if (process.execArgv.includes(FLAG)) {
  await import('./program.js')
} else {
  const child = spawn(process.execPath, [...process.execArgv, FLAG, fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: 'inherit' })
  // A signal sent to this process is meant for the command. (A terminal's Ctrl-C reaches both
  // processes; program.ts counts the pair as one.)
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => { child.kill(signal) })
  child.on('error', (err) => {
    process.stderr.write(`strand: cannot start ${process.execPath}: ${err.message}\n`)
    process.exit(1)
  })
  child.on('exit', (code, signal) => {
    if (signal === null) process.exit(code ?? 1)
    // Die of the same signal, so the shell sees what the command saw.
    process.removeAllListeners(signal)
    process.kill(process.pid, signal)
  })
}
