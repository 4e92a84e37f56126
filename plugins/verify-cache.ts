/**
 * The verify cache: successful hash verifications only, bounded (LRU), with a TTL, keyed by an
 * HMAC under a per-process random key over (section, usernames, password, stored hash), so the
 * plaintext is never held and a changed hash or username invalidates its entries. Identical
 * verifications in flight run once. No I/O, no Fastify.
 */
import { createHmac, randomBytes } from 'node:crypto'

export interface VerifyCacheOptions {
  /** Most entries kept (least recently used dropped first). */
  readonly max?: number
  /** How long a success is trusted, in ms. */
  readonly ttlMs?: number
}

export const DEFAULT_VERIFY_CACHE_MAX = 1000
export const DEFAULT_VERIFY_CACHE_TTL_MS = 5 * 60_000

export class VerifyCache {
  readonly #key = randomBytes(32)
  readonly #max: number
  readonly #ttlMs: number
  /** key -> expiry time; Map order is recency order. */
  readonly #hits = new Map<string, number>()
  readonly #inFlight = new Map<string, Promise<boolean>>()
  #hitCount = 0

  constructor (options: VerifyCacheOptions = {}) {
    this.#max = options.max ?? DEFAULT_VERIFY_CACHE_MAX
    this.#ttlMs = options.ttlMs ?? DEFAULT_VERIFY_CACHE_TTL_MS
  }

  /** The cache key: an HMAC, so neither the password nor anything reversible is kept. */
  keyFor (parts: readonly string[]): string {
    // NUL cannot occur in a username or password (control characters are refused), so parts cannot run together.
    return createHmac('sha256', this.#key).update(parts.join('\u0000')).digest('base64url')
  }

  /** Whether a success for this key is cached and fresh (refreshes its recency). */
  has (key: string): boolean {
    const expires = this.#hits.get(key)
    if (expires === undefined) return false
    this.#hits.delete(key)
    if (expires <= Date.now()) return false
    this.#hits.set(key, expires)
    this.#hitCount++
    return true
  }

  /** Run `verify` once for concurrent callers with the same key; remember a success. */
  verify (key: string, verify: () => Promise<boolean>): Promise<boolean> {
    const running = this.#inFlight.get(key)
    if (running !== undefined) return running
    const promise = verify().then(ok => {
      if (ok) this.#remember(key)
      return ok
    }).finally(() => this.#inFlight.delete(key))
    this.#inFlight.set(key, promise)
    return promise
  }

  #remember (key: string): void {
    this.#hits.delete(key)
    this.#hits.set(key, Date.now() + this.#ttlMs)
    if (this.#hits.size > this.#max) this.#hits.delete(this.#hits.keys().next().value!)
  }

  /** Lookups answered from the cache since start (metrics). */
  get hitCount (): number {
    return this.#hitCount
  }

  get size (): number {
    return this.#hits.size
  }

  /** Verifications running now (for tests of single flight). */
  get inFlight (): number {
    return this.#inFlight.size
  }
}

/** The process's cache, shared by every section and every reload (keys carry the section and hash). */
export const verifyCache = new VerifyCache()
