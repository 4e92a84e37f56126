/**
 * HTTPS certificates hot-reloaded: the PEM certificate and key files are watched (chokidar, as the
 * options file is) and a new pair is put in force with `setSecureContext`. A pair that does not
 * load (bad PEM, key not matching the certificate, a file half written) keeps the old one in force.
 */
import { EventEmitter } from 'node:events'
import { readFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { createSecureContext } from 'node:tls'
import type { Server } from 'node:https'
import { watch, type FSWatcher } from 'chokidar'

/** Where the certificate chain and its key are. */
export interface TlsFiles {
  readonly cert: string
  readonly key: string
}

/** The few logger methods the watcher needs (pino's signature). */
interface TlsLogger {
  info (obj: object, msg: string): void
  error (obj: object, msg: string): void
}

/** Read and check a pair now (start-up): throws an Error whose message says which file and why. */
export function readTlsFilesSync (files: TlsFiles): { cert: Buffer, key: Buffer } {
  const cert = readFileSync(files.cert)
  const key = readFileSync(files.key)
  createSecureContext({ cert, key })
  return { cert, key }
}

/** A certificate chain and its key, as loaded. */
export interface TlsPair {
  readonly cert: Buffer
  readonly key: Buffer
}

/** Watches a certificate pair and swaps it into running HTTPS servers. Emits `reload` and `reload-error`. */
export class CertificateWatcher extends EventEmitter {
  #files: TlsFiles
  readonly #servers: Server[]
  #pair: TlsPair
  readonly #log: TlsLogger
  #watcher: FSWatcher | undefined
  #timer: NodeJS.Timeout | undefined
  #closed = false

  /** `pair`: what `server` was started with (what a server attached later starts with too). */
  constructor (server: Server, files: TlsFiles, pair: TlsPair, log: TlsLogger, readonly debounceMs = 50) {
    super()
    this.#servers = [server]
    this.#files = files
    this.#pair = pair
    this.#log = log
  }

  /** The pair in force (to start another server with). */
  get pair (): TlsPair {
    return this.#pair
  }

  /** Keep another server (a second listening port) on the same certificate from now on. */
  attach (server: Server): void {
    this.#servers.push(server)
  }

  get files (): TlsFiles {
    return this.#files
  }

  async start (): Promise<void> {
    await this.#watch()
  }

  async #watch (): Promise<void> {
    await this.#watcher?.close()
    const targets = new Set([resolve(this.#files.cert), resolve(this.#files.key)])
    // Watch the directories: certificate renewals usually replace the files (rename), not edit them.
    const watcher = watch([...new Set([...targets].map(f => dirname(f)))], {
      ignoreInitial: true,
      depth: 0,
      ignored: (path: string) => !targets.has(resolve(path)) && ![...targets].some(f => dirname(f) === resolve(path))
    })
    this.#watcher = watcher
    watcher.on('all', (_event, path) => { if (targets.has(resolve(path))) this.#schedule() })
    watcher.on('error', (err) => this.#log.error({ err: String(err) }, 'certificate watcher error'))
    await new Promise<void>(resolve => watcher.once('ready', () => resolve()))
  }

  /** Follow other files (the options named new paths); loads them at once. */
  async retarget (files: TlsFiles): Promise<void> {
    if (files.cert === this.#files.cert && files.key === this.#files.key) return
    this.#files = files
    await this.#watch()
    await this.reload()
  }

  #schedule (): void {
    if (this.#closed) return
    clearTimeout(this.#timer)
    // A renewal writes two files: wait until both are written.
    this.#timer = setTimeout(() => { this.reload().catch(() => {}) }, this.debounceMs)
  }

  /** Read the pair and put it in force, or keep the old one and say why. */
  async reload (): Promise<void> {
    const files = this.#files
    try {
      const [cert, key] = await Promise.all([readFile(files.cert), readFile(files.key)])
      createSecureContext({ cert, key })
      for (const server of this.#servers) server.setSecureContext({ cert, key })
      this.#pair = { cert, key }
    } catch (err) {
      if (this.#closed) return
      const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message
      this.#log.error({ cert: files.cert, key: files.key, reason }, 'TLS certificate rejected; the previous certificate stays in force')
      this.emit('reload-error', reason)
      return
    }
    if (this.#closed) return
    this.#log.info({ cert: files.cert }, 'TLS certificate reloaded')
    this.emit('reload')
  }

  async close (): Promise<void> {
    this.#closed = true
    clearTimeout(this.#timer)
    await this.#watcher?.close()
  }
}
