/**
 * Installs the peers (bench/peers/package.json, pinned by its package-lock.json) when
 * bench/peers/node_modules is missing or was installed from another lockfile: `npm ci
 * --prefix bench/peers`. A stamp in node_modules holds the lockfile's hash, so an unchanged
 * install costs nothing. A failed install is reported, not fatal: the suite then marks the
 * peers that do not load as unavailable and runs the rest.
 */
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { REPO_ROOT } from './runner.js'

export const PEERS_DIR = path.join(REPO_ROOT, 'bench', 'peers')
const LOCKFILE = path.join(PEERS_DIR, 'package-lock.json')
const STAMP = path.join(PEERS_DIR, 'node_modules', '.strand-peers-lock-hash')

/** Why the peers need installing, or null when the installed tree matches the lockfile. */
export function installNeeded(): string | null {
  const want = createHash('sha256').update(fs.readFileSync(LOCKFILE)).digest('hex')
  let have: string
  try {
    have = fs.readFileSync(STAMP, 'utf8').trim()
  } catch {
    return fs.existsSync(path.join(PEERS_DIR, 'node_modules')) ? 'bench/peers/node_modules has no install stamp' : 'bench/peers/node_modules is missing'
  }
  return have === want ? null : 'bench/peers/package-lock.json changed since the last install'
}

export interface InstallResult {
  ok: boolean
  seconds: number
  /** npm's last lines when it failed. */
  error?: string
}

/** Runs `npm ci` for the peers; better-sqlite3 builds from source where its prebuild cannot be fetched (about a minute on 2 cores). */
export function installPeers(log: (line: string) => void): Promise<InstallResult> {
  const started = Date.now()
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'
  const child = spawn(npm, ['ci', '--prefix', PEERS_DIR, '--no-audit', '--no-fund', '--loglevel', 'error'], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.on('data', (d: Buffer) => { output += d.toString() })
  child.stderr.on('data', (d: Buffer) => { output += d.toString() })
  return new Promise((resolve) => {
    child.on('error', (err) => resolve({ ok: false, seconds: (Date.now() - started) / 1000, error: err.message }))
    child.on('close', (code) => {
      const seconds = (Date.now() - started) / 1000
      if (code === 0) {
        fs.writeFileSync(STAMP, createHash('sha256').update(fs.readFileSync(LOCKFILE)).digest('hex') + '\n')
        log(`peers installed in ${seconds.toFixed(0)} s`)
        resolve({ ok: true, seconds })
      } else {
        resolve({ ok: false, seconds, error: `npm ci exited with code ${code}: ${output.trim().split('\n').slice(-5).join(' | ')}` })
      }
    })
  })
}
