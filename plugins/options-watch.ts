/**
 * Hot reload: watch the options file with chokidar and swap one reference when a valid version
 * appears. Any invalid version (or a deleted file) keeps the last good options in force.
 */
import { EventEmitter } from 'node:events'
import { basename, dirname, resolve } from 'node:path'
import { watch, type FSWatcher } from 'chokidar'
import { changedSections, OptionsError, parseOptions, readOptionsFile, type OptionsSnapshot } from './options-file.js'
import { compilePolicy, type PolicyTable } from './policy.js'
import { compileStorageSettings, type StorageSettings } from '../services/storage/settings.js'
import { compileServiceSettings, type ServiceSettings } from '../services/service/settings.js'
import { compileSecuritySettings, type SecuritySettings } from './security-settings.js'
import { compileNotificationSettings, type NotificationSettings } from '../services/notification/settings.js'
import { compilePortRules, type PortRules } from './port-restrictions.js'
import { startOnlyChanges } from './start-only.js'

/** Options and the policy compiled from them: what one request sees from start to end. */
export interface LoadedOptions {
  readonly options: OptionsSnapshot
  readonly policy: PolicyTable
  /** `[storage]` as typed settings (the Storage API). */
  readonly storage: StorageSettings
  /** The `[service.<name>]` sections as typed service definitions (the Service API). */
  readonly services: ServiceSettings
  /** Hashing, throttling, proxy and TLS settings from `[server]`. */
  readonly security: SecuritySettings
  /** `[notification]` settings (services/notification/settings.ts). */
  readonly notification: NotificationSettings
  /** `[port_restrictions]` compiled, or null when there is none. */
  readonly portRules: PortRules | null
}

/** Payload of the `reload` event. */
export interface ReloadApplied {
  readonly loaded: LoadedOptions
  /** Sections added, removed or changed (names only). */
  readonly changed: readonly string[]
  readonly trigger: string
}

/** Payload of the `reload-error` event. */
export interface ReloadRejected {
  readonly error: OptionsError
  readonly trigger: string
}

/** The few logger methods the watcher needs (pino's signature). */
export interface WatchLogger {
  debug (obj: object, msg: string): void
  info (obj: object, msg: string): void
  warn (obj: object, msg: string): void
  error (obj: object, msg: string): void
}

/** Compile a parsed snapshot into what requests use. */
export function compileOptions (options: OptionsSnapshot): LoadedOptions {
  const { settings, warnings: securityWarnings } = compileSecuritySettings(options)
  const policy = compilePolicy(options)
  const ports = compilePortRules(options)
  // Load-time warnings (plaintext passwords, unheard ports) join the parser's so every reader lists them.
  const warnings = [...securityWarnings, ...ports.warnings]
  const withWarnings = warnings.length === 0 ? options : Object.freeze({ ...options, warnings: Object.freeze([...options.warnings, ...warnings]) })
  return Object.freeze({
    options: withWarnings,
    policy,
    storage: compileStorageSettings(options),
    services: compileServiceSettings(options),
    notification: compileNotificationSettings(options),
    security: settings,
    portRules: ports.rules
  })
}

/** Read, parse, validate and compile an options file. Throws `OptionsError`. */
export async function loadOptionsFile (file: string): Promise<LoadedOptions> {
  return compileOptions(await readOptionsFile(file))
}

/** Compile options given as INI text. Throws `OptionsError`. */
export function loadOptionsText (text: string, file = '<inline>'): LoadedOptions {
  return compileOptions(parseOptions(text, file))
}

export function logWarnings (log: WatchLogger, options: OptionsSnapshot): void {
  for (const w of options.warnings) log.warn({ file: w.file, line: w.line }, w.message)
}

export interface OptionsWatcherSettings {
  readonly logger: WatchLogger
  /** Quiet time after the last file event before reading (editors write in bursts). */
  readonly debounceMs?: number
}

/**
 * Watches one options file. Emits `reload` (ReloadApplied) when a new version is in force and
 * `reload-error` (ReloadRejected) when a version is refused, so callers await events, not time.
 */
export class OptionsWatcher extends EventEmitter {
  readonly file: string
  /** What the process started with: start-only options keep these values until a restart. */
  readonly #start: LoadedOptions
  #current: LoadedOptions
  readonly #log: WatchLogger
  readonly #debounceMs: number
  #watcher: FSWatcher | undefined
  #timer: NodeJS.Timeout | undefined
  #running: Promise<void> | undefined
  #again = false
  #closed = false

  constructor (file: string, initial: LoadedOptions, settings: OptionsWatcherSettings) {
    super()
    this.file = resolve(file)
    this.#start = initial
    this.#current = initial
    this.#log = settings.logger
    this.#debounceMs = settings.debounceMs ?? 20
  }

  /** The options in force. */
  get current (): LoadedOptions {
    return this.#current
  }

  /** Start watching; resolves once chokidar is ready, so an edit made after it is seen. */
  async start (): Promise<void> {
    const file = this.file
    // Watch the directory, not the file: a rename over the file replaces its inode.
    const watcher = watch(dirname(file), {
      ignoreInitial: true,
      depth: 0,
      ignored: (path: string) => path !== file && path !== dirname(file)
    })
    this.#watcher = watcher
    watcher.on('all', (event, path) => {
      if (resolve(path) === file) this.#schedule(event)
    })
    // chokidar drops a 'change' that follows a rename by a few ms (seen with chokidar 5 on Linux);
    // its raw fs.watch events still carry it, so they trigger a (debounced) reload too.
    const name = basename(file)
    watcher.on('raw', (event: string, path: string) => {
      if (basename(path) === name) this.#schedule(event)
    })
    watcher.on('error', (err) => this.#log.error({ file, err: String(err) }, 'options watcher error'))
    await new Promise<void>(resolve => watcher.once('ready', () => resolve()))
  }

  #schedule (trigger: string): void {
    if (this.#closed) return
    this.#log.debug({ file: this.file, event: trigger }, 'options file event')
    clearTimeout(this.#timer)
    this.#timer = setTimeout(() => this.reloadInBackground(trigger), this.#debounceMs)
  }

  /** `reload` for callers that cannot wait (timers, signals): an unexpected failure is logged, never thrown. */
  reloadInBackground (trigger: string): void {
    this.reload(trigger).catch((err: unknown) => {
      this.#log.error({ file: this.file, trigger, err: String(err) }, 'options reload failed unexpectedly; the last good options stay in force')
    })
  }

  /** Read the file now (also what SIGHUP does). Reloads never overlap; one asked for during another runs after it. */
  async reload (trigger = 'manual'): Promise<void> {
    if (this.#running !== undefined) {
      this.#again = true
      return this.#running
    }
    this.#running = (async () => {
      try {
        do {
          this.#again = false
          await this.#reloadOnce(trigger)
        } while (this.#again && !this.#closed)
      } finally {
        this.#running = undefined
      }
    })()
    return this.#running
  }

  async #reloadOnce (trigger: string): Promise<void> {
    let next: LoadedOptions
    try {
      next = await loadOptionsFile(this.file)
      // A zero-section file mid-edit (truncate, then write) must not open every door for a moment.
      if (next.options.sections.size === 0) {
        throw new OptionsError(this.file, 0, 'the file has no section (empty or being written); an empty options file is only accepted at start')
      }
    } catch (err) {
      if (!(err instanceof OptionsError)) throw err
      if (this.#closed) return
      this.#log.error({ file: err.file, line: err.line, reason: err.reason, trigger },
        `options rejected, the last good options stay in force: ${err.message}`)
      this.emit('reload-error', { error: err, trigger } satisfies ReloadRejected)
      return
    }
    if (this.#closed) return
    const previous = this.#current
    this.#current = next
    const changed = changedSections(previous.options, next.options)
    logWarnings(this.#log, next.options)
    this.#log.info({ file: this.file, changed, hash: next.options.hash, trigger }, 'options reloaded')
    for (const { option, effect } of startOnlyChanges(this.#start, previous, next)) {
      this.#log.warn({ file: this.file, option }, `${option} changed: restart needed for it to apply; until then ${effect}`)
    }
    this.emit('reload', { loaded: next, changed, trigger } satisfies ReloadApplied)
  }

  async close (): Promise<void> {
    this.#closed = true
    clearTimeout(this.#timer)
    await this.#watcher?.close()
    await this.#running
  }
}
