/**
 * The storage in force: follows `[storage]` across options reloads. A change of `backend` (or of
 * `redis_url`) opens the new store and closes the old one cleanly; data does not migrate. Other
 * changes (limits) apply to the store already open.
 */
import { createRedisClient, redactRedisUrl, type RedisClientLogger } from '../redis-client.js'
import { MemoryStore } from './memory-store.js'
import { RedisStore } from './redis-store.js'
import type { StorageSettings } from './settings.js'
import type { StorageStore, StoredData, StoredValue, UpdateLimits } from './store.js'

/** What `fastify.gmsStorage` offers: the store in force, itself usable as a `StorageStore`. */
export interface StorageHandle extends StorageStore {
  /** The store in force now (opened or switched on first use after a reload). */
  store (): StorageStore
}

export interface ActiveStoreOptions {
  /** The settings in force now (read on every use, so a reload applies on the next call). */
  readonly settings: () => StorageSettings
  readonly log: RedisClientLogger & { error (obj: object, msg: string): void }
  /** Memory backend clock, in ms (tests). */
  readonly now?: () => number
  /** Memory backend sweep interval, in ms. */
  readonly sweepIntervalMs?: number
}

/** Stores are equal when they would hold the same data: same backend, and for Redis the same URL. */
function storeIdentity (settings: StorageSettings): string {
  return settings.backend === 'redis' ? `redis ${settings.redisUrl}` : 'memory'
}

export class ActiveStore implements StorageHandle {
  readonly #options: ActiveStoreOptions
  #settings: StorageSettings
  #identity: string
  #store: StorageStore
  readonly #closing = new Set<Promise<void>>()

  constructor (options: ActiveStoreOptions) {
    this.#options = options
    this.#settings = options.settings()
    this.#identity = storeIdentity(this.#settings)
    this.#store = this.#open(this.#settings)
  }

  get backend (): 'memory' | 'redis' {
    return this.store().backend
  }

  store (): StorageStore {
    const settings = this.#options.settings()
    if (settings !== this.#settings) this.#follow(settings)
    return this.#store
  }

  #open (settings: StorageSettings): StorageStore {
    if (settings.backend === 'redis') return new RedisStore(createRedisClient(settings.redisUrl, this.#options.log))
    return new MemoryStore({
      maxEntries: settings.maxEntries,
      maxBytes: settings.maxMemoryBytes,
      now: this.#options.now,
      sweepIntervalMs: this.#options.sweepIntervalMs
    })
  }

  #follow (settings: StorageSettings): void {
    this.#settings = settings
    const identity = storeIdentity(settings)
    if (identity === this.#identity) {
      if (this.#store instanceof MemoryStore) this.#store.setLimits({ maxEntries: settings.maxEntries, maxBytes: settings.maxMemoryBytes })
      return
    }
    const old = this.#store
    this.#store = this.#open(settings)
    this.#identity = identity
    this.#options.log.info({ from: old.backend, to: settings.backend, redis: settings.backend === 'redis' ? redactRedisUrl(settings.redisUrl) : undefined },
      'storage backend switched; data kept by the previous backend does not migrate')
    const closing = old.close()
      .catch((err: unknown) => this.#options.log.error({ err: String(err) }, 'closing the previous storage backend failed'))
      .finally(() => this.#closing.delete(closing))
    this.#closing.add(closing)
  }

  create (data: StoredData, ttlSeconds: number): Promise<string> {
    return this.store().create(data, ttlSeconds)
  }

  update (id: string, data: StoredData, ttlSeconds: number, limits?: UpdateLimits): Promise<boolean> {
    return this.store().update(id, data, ttlSeconds, limits)
  }

  getAll (id: string): Promise<StoredData | null> {
    return this.store().getAll(id)
  }

  get (id: string, key: string): Promise<StoredValue | null> {
    return this.store().get(id, key)
  }

  delete (id: string): Promise<boolean> {
    return this.store().delete(id)
  }

  deleteKey (id: string, key: string): Promise<boolean> {
    return this.store().deleteKey(id, key)
  }

  countLive (): Promise<number> {
    return this.store().countLive()
  }

  /** Close the store in force and wait for any previous one still closing. */
  async close (): Promise<void> {
    await Promise.all([this.#store.close(), ...this.#closing])
  }
}
