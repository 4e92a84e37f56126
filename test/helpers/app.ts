/** Build gms-gate for a test: options in a real temp file or inline, logs captured line by line. */
import { once } from 'node:events'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import { buildServer, REDACTED_PATHS, type BuildServerOptions } from '../../server.js'
import type { ReloadApplied, ReloadRejected } from '../../plugins/options-watch.js'
import { auditLogLines, auditPassword, auditUsername, auditOptionsText } from './log-audit.js'

/** Every log line the app wrote, parsed. */
export class LogCapture extends Writable {
  readonly lines: Array<Record<string, unknown> & { msg?: string, level: number }> = []
  readonly raw: string[] = []
  override _write (chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    for (const line of chunk.toString().split('\n')) {
      if (line === '') continue
      this.raw.push(line)
      auditLogLines.push(line)
      this.lines.push(JSON.parse(line))
    }
    cb()
  }

  /** Fail-safe check used by tests: does any line contain this text? */
  contains (text: string): boolean {
    return this.raw.some(line => line.includes(text))
  }
}

interface Teardown { teardown (fn: () => unknown): void }

/** A temp dir removed at teardown. */
export async function tempDir (t: Teardown): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'gms-gate-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

export interface TestApp {
  readonly app: FastifyInstance
  readonly logs: LogCapture
  /** Path of the options file (watched). */
  readonly file: string
  /** Resolves with the next applied reload. */
  nextReload (): Promise<ReloadApplied>
  /** Resolves with the next rejected reload. */
  nextReloadError (): Promise<ReloadRejected>
}

/** Write `ini` to a temp file and build the app on it (watching it); closed at teardown. */
export async function appOnFile (t: Teardown, ini: string, extra: Partial<BuildServerOptions> = {}): Promise<TestApp> {
  const dir = await tempDir(t)
  const file = join(dir, 'config.ini')
  auditOptionsText(ini)
  await writeFile(file, ini)
  const logs = new LogCapture()
  const app = await buildServer({ configPath: file, logger: { level: 'debug', stream: logs, redact: REDACTED_PATHS }, ...extra })
  t.teardown(() => app.close())
  const watcher = app.gmsGate.watcher!
  return {
    app,
    logs,
    file,
    nextReload: async () => (await once(watcher, 'reload'))[0] as ReloadApplied,
    nextReloadError: async () => (await once(watcher, 'reload-error'))[0] as ReloadRejected
  }
}

/** Build the app on inline options (no file, no watcher); closed at teardown. */
export async function appOnText (t: Teardown, ini: string, extra: Partial<BuildServerOptions> = {}): Promise<{ app: FastifyInstance, logs: LogCapture }> {
  auditOptionsText(ini)
  const logs = new LogCapture()
  const app = await buildServer({ options: ini, logger: { level: 'debug', stream: logs, redact: REDACTED_PATHS }, ...extra })
  t.teardown(() => app.close())
  return { app, logs }
}

/** `Basic base64(user:pass)`. */
export function basic (username: string, password: string): string {
  auditUsername(username)
  auditPassword(password)
  return `Basic ${Buffer.from(`${username}:${password}`, 'utf8').toString('base64')}`
}
