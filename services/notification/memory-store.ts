/**
 * Subscriptions in this process (the default backend). Exact filters are indexed by tag, so a
 * publish costs one map lookup plus a scan of the wildcard filters only.
 */
import { randomUUID } from 'node:crypto'
import { isWildcard, matchesFilter } from './filter.js'
import type { SubscriptionStore } from './store.js'
import type { Subscription, SubscriptionRequest } from './validate.js'

/** How often expired subscriptions are swept out of memory (they are ignored at once when read). */
const SWEEP_MS = 10_000

export class MemorySubscriptionStore implements SubscriptionStore {
  readonly backend = 'memory'
  readonly #byId = new Map<string, Subscription>()
  readonly #byTag = new Map<string, Set<string>>()
  readonly #wildcards = new Map<string, Subscription>()
  readonly #sweep: NodeJS.Timeout
  readonly #now: () => number

  constructor (now: () => number = Date.now) {
    this.#now = now
    this.#sweep = setInterval(() => this.#sweepExpired(), SWEEP_MS).unref()
  }

  async add (request: SubscriptionRequest, max: number): Promise<Subscription | null> {
    if (this.#byId.size >= max) this.#sweepExpired()
    if (this.#byId.size >= max) return null
    const sub: Subscription = Object.freeze({ ...request, id: randomUUID(), expiresAt: this.#now() + request.expire * 1000 })
    this.#byId.set(sub.id, sub)
    if (isWildcard(sub.filter)) {
      this.#wildcards.set(sub.id, sub)
    } else {
      let ids = this.#byTag.get(sub.filter)
      if (ids === undefined) this.#byTag.set(sub.filter, ids = new Set())
      ids.add(sub.id)
    }
    return sub
  }

  async get (id: string): Promise<Subscription | null> {
    const sub = this.#byId.get(id)
    if (sub === undefined) return null
    if (sub.expiresAt <= this.#now()) {
      this.#remove(sub)
      return null
    }
    return sub
  }

  async delete (id: string): Promise<boolean> {
    const sub = await this.get(id)
    if (sub === null) return false
    this.#remove(sub)
    return true
  }

  async matching (tag: string): Promise<Subscription[]> {
    const now = this.#now()
    const found: Subscription[] = []
    for (const id of this.#byTag.get(tag) ?? []) {
      const sub = this.#byId.get(id)!
      if (sub.expiresAt > now) found.push(sub)
    }
    for (const sub of this.#wildcards.values()) {
      if (sub.expiresAt > now && matchesFilter(sub.filter, tag)) found.push(sub)
    }
    return found
  }

  /** Sweeps first (a pass over every subscription, as the periodic sweep does), so the count holds no expired one. */
  async countLive (): Promise<number> {
    this.#sweepExpired()
    return this.#byId.size
  }

  async close (): Promise<void> {
    clearInterval(this.#sweep)
  }

  #remove (sub: Subscription): void {
    this.#byId.delete(sub.id)
    this.#wildcards.delete(sub.id)
    const ids = this.#byTag.get(sub.filter)
    ids?.delete(sub.id)
    if (ids?.size === 0) this.#byTag.delete(sub.filter)
  }

  #sweepExpired (): void {
    const now = this.#now()
    for (const sub of this.#byId.values()) if (sub.expiresAt <= now) this.#remove(sub)
  }
}
