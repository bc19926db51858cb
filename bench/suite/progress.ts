/**
 * Progress of a long run, on stderr only: one line redrawn in place on a terminal; with
 * `--progress` and no terminal (CI), one plain line per finished task, so logs stay readable;
 * otherwise nothing.
 */
export type ProgressMode = 'tty' | 'lines' | 'off'

export function progressMode(flag: boolean): ProgressMode {
  if (process.stderr.isTTY) return 'tty'
  return flag ? 'lines' : 'off'
}

function clock(ms: number): string {
  const s = Math.floor(ms / 1000)
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`
}

export class Progress {
  readonly #mode: ProgressMode
  readonly #total: number
  readonly #started = Date.now()
  #index = 0
  #name = ''
  #fraction = 0
  #taskStarted = Date.now()
  #lastDraw = 0

  constructor(mode: ProgressMode, total: number) {
    this.#mode = mode
    this.#total = total
  }

  start(index: number, name: string): void {
    this.#index = index
    this.#name = name
    this.#fraction = 0
    this.#taskStarted = Date.now()
    this.#draw(true)
  }

  update(fraction: number): void {
    this.#fraction = fraction
    this.#draw(false)
  }

  done(ok: boolean, note = ''): void {
    if (this.#mode === 'lines') {
      const secs = ((Date.now() - this.#taskStarted) / 1000).toFixed(1)
      process.stderr.write(`[${this.#index + 1}/${this.#total}] ${this.#name}: ${ok ? 'done' : 'FAILED'} in ${secs} s${note === '' ? '' : ` (${note})`} · ${clock(Date.now() - this.#started)} elapsed\n`)
    }
  }

  /** A message that must not be overdrawn. */
  log(line: string): void {
    if (this.#mode === 'tty') process.stderr.write('\r\x1b[K')
    process.stderr.write(line + '\n')
    this.#draw(true)
  }

  finish(): void {
    if (this.#mode === 'tty') process.stderr.write('\r\x1b[K')
  }

  #draw(force: boolean): void {
    if (this.#mode !== 'tty' || this.#name === '') return
    const now = Date.now()
    if (!force && now - this.#lastDraw < 100) return
    this.#lastDraw = now
    const pct = `${Math.floor(this.#fraction * 100)}%`.padStart(4)
    const line = `[${this.#index + 1}/${this.#total}] ${this.#name} ${pct} · ${clock(now - this.#started)} elapsed`
    process.stderr.write(`\r\x1b[K${line.slice(0, (process.stderr.columns ?? 100) - 1)}`)
  }
}
