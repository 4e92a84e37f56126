/**
 * A cap on password hash verifications running at once, process-wide: each costs milliseconds of
 * CPU and (scrypt, argon2id) megabytes of memory, so wrong guesses from many addresses at once,
 * each under its own failure limit, must not pile up without bound. Checks beyond the cap wait in
 * a bounded queue; beyond the queue they are refused at once (the gate answers 503 with
 * Retry-After). Cached successes never come here. No I/O, no Fastify.
 */
import { availableParallelism } from 'node:os'
import { HashChecksBusyError } from './errors.js'

export interface HashLimitSettings {
  /** Hash verifications running at once. */
  readonly running: number
  /** Verifications waiting for a slot; one more is refused. */
  readonly queued: number
}

export const DEFAULT_HASH_LIMIT: HashLimitSettings = Object.freeze({ running: availableParallelism(), queued: 64 })

export class HashLimit {
  #settings: HashLimitSettings
  #running = 0
  readonly #waiting: Array<() => void> = []
  #refused = 0

  constructor (settings: HashLimitSettings = DEFAULT_HASH_LIMIT) {
    this.#settings = settings
  }

  /** New limits apply to the next check (a reload); checks running or waiting keep their place. */
  configure (settings: HashLimitSettings): void {
    this.#settings = settings
    this.#admit()
  }

  /** Run `check` when a slot is free; rejects with `HashChecksBusyError` when the queue is full. */
  async run<T> (check: () => Promise<T>): Promise<T> {
    if (this.#running >= this.#settings.running) {
      if (this.#waiting.length >= this.#settings.queued) {
        this.#refused++
        throw new HashChecksBusyError()
      }
      await new Promise<void>(resolve => this.#waiting.push(resolve))
    } else {
      this.#running++
    }
    try {
      return await check()
    } finally {
      this.#running--
      this.#admit()
    }
  }

  #admit (): void {
    while (this.#running < this.#settings.running && this.#waiting.length > 0) {
      this.#running++
      this.#waiting.shift()!()
    }
  }

  get running (): number { return this.#running }
  get queued (): number { return this.#waiting.length }
  /** Checks refused since start (metrics). */
  get refusedCount (): number { return this.#refused }
}

/** The process's limit, shared by every section, like the verify cache. */
export const hashLimit = new HashLimit()
