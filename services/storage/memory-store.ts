/**
 * The in-memory storage backend (the default: nothing to set up). No timer per key: an expired id is
 * dropped when it is next read, and a periodic sweep drops the ones nobody reads again. Memory is
 * bounded by a number of ids and a number of bytes; past either, `create` answers 507.
 */
import { StorageFullError, TooManyKeysError } from '../../plugins/errors.js'
import { newStorageId, ttlMilliseconds, type StorageStore, type StoredData, type StoredValue, type UpdateLimits } from './store.js'

/** The bounds of a memory store (`[storage] max_entries` and `max_memory_bytes`), changeable on reload. */
export interface MemoryStoreLimits {
  readonly maxEntries: number
  readonly maxBytes: number
}

export interface MemoryStoreOptions extends MemoryStoreLimits {
  /** The clock, in ms (default `Date.now`): tests move time instead of waiting for it. */
  readonly now?: () => number
  /** How often expired ids are swept, in ms (default 5000). */
  readonly sweepIntervalMs?: number
}

interface Entry {
  readonly data: Map<string, StoredValue>
  expiresAt: number
  /** Bytes of keys and values, as counted against `maxBytes`. */
  bytes: number
}

/** Bytes one key and its value count for: what the caller sent, not the JS heap overhead. */
function sizeOf (key: string, value: StoredValue): number {
  const own = Buffer.byteLength(key)
  if (value.type === 'text') return own + Buffer.byteLength(value.value)
  return own + value.data.length + Buffer.byteLength(value.contentType) + Buffer.byteLength(value.filename)
}

export class MemoryStore implements StorageStore {
  readonly backend = 'memory'
  readonly #entries = new Map<string, Entry>()
  readonly #now: () => number
  readonly #timer: NodeJS.Timeout
  #limits: MemoryStoreLimits
  #bytes = 0

  constructor (options: MemoryStoreOptions) {
    this.#limits = { maxEntries: options.maxEntries, maxBytes: options.maxBytes }
    this.#now = options.now ?? Date.now
    this.#timer = setInterval(() => this.sweep(), options.sweepIntervalMs ?? 5000)
    this.#timer.unref()
  }

  /** Apply new bounds (an options reload); what is already stored stays. */
  setLimits (limits: MemoryStoreLimits): void {
    this.#limits = { maxEntries: limits.maxEntries, maxBytes: limits.maxBytes }
  }

  /** Ids and bytes held now (expired ids not yet swept included). */
  get usage (): { readonly entries: number, readonly bytes: number } {
    return { entries: this.#entries.size, bytes: this.#bytes }
  }

  /** Drop every expired id; returns how many went. */
  sweep (): number {
    const now = this.#now()
    let dropped = 0
    for (const [id, entry] of this.#entries) {
      if (entry.expiresAt <= now) {
        this.#remove(id, entry)
        dropped++
      }
    }
    return dropped
  }

  #remove (id: string, entry: Entry): void {
    this.#entries.delete(id)
    this.#bytes -= entry.bytes
  }

  #live (id: string): Entry | undefined {
    const entry = this.#entries.get(id)
    if (entry !== undefined && entry.expiresAt <= this.#now()) {
      this.#remove(id, entry)
      return undefined
    }
    return entry
  }

  /** Throw 507 unless `ids` more ids and `bytes` more bytes fit (sweeping first when they would not). */
  #makeRoom (ids: number, bytes: number): void {
    const fits = (): boolean => this.#entries.size + ids <= this.#limits.maxEntries && this.#bytes + bytes <= this.#limits.maxBytes
    if (fits()) return
    this.sweep()
    if (fits()) return
    throw new StorageFullError(this.#entries.size + ids > this.#limits.maxEntries
      ? `max_entries = ${this.#limits.maxEntries} ids`
      : `max_memory_bytes = ${this.#limits.maxBytes}`)
  }

  async create (data: StoredData, ttlSeconds: number): Promise<string> {
    const values = new Map(Object.entries(data))
    // As in Redis, where an empty hash does not exist: an id created without keys is unknown at once.
    if (values.size === 0) return newStorageId()
    let bytes = 0
    for (const [key, value] of values) bytes += sizeOf(key, value)
    this.#makeRoom(1, bytes)
    const id = newStorageId()
    this.#entries.set(id, { data: values, expiresAt: this.#now() + ttlMilliseconds(ttlSeconds), bytes })
    this.#bytes += bytes
    return id
  }

  async update (id: string, data: StoredData, ttlSeconds: number, limits: UpdateLimits = {}): Promise<boolean> {
    const entry = this.#live(id)
    if (entry === undefined) return false
    let added = 0
    let delta = 0
    for (const [key, value] of Object.entries(data)) {
      const old = entry.data.get(key)
      if (old === undefined) added++
      else delta -= sizeOf(key, old)
      delta += sizeOf(key, value)
    }
    if (limits.maxKeys !== undefined && entry.data.size + added > limits.maxKeys) {
      throw new TooManyKeysError(entry.data.size + added, limits.maxKeys)
    }
    if (delta > 0) this.#makeRoom(0, delta)
    for (const [key, value] of Object.entries(data)) entry.data.set(key, value)
    entry.bytes += delta
    this.#bytes += delta
    entry.expiresAt = this.#now() + ttlMilliseconds(ttlSeconds)
    return true
  }

  async getAll (id: string): Promise<StoredData | null> {
    const entry = this.#live(id)
    return entry === undefined ? null : Object.fromEntries(entry.data)
  }

  async get (id: string, key: string): Promise<StoredValue | null> {
    return this.#live(id)?.data.get(key) ?? null
  }

  async delete (id: string): Promise<boolean> {
    const entry = this.#live(id)
    if (entry === undefined) return false
    this.#remove(id, entry)
    return true
  }

  async deleteKey (id: string, key: string): Promise<boolean> {
    const entry = this.#live(id)
    const old = entry?.data.get(key)
    if (entry === undefined || old === undefined) return false
    entry.data.delete(key)
    const bytes = sizeOf(key, old)
    entry.bytes -= bytes
    this.#bytes -= bytes
    if (entry.data.size === 0) this.#remove(id, entry)
    return true
  }

  /** Sweeps first (a pass over every id, as the periodic sweep does), so the count holds no expired id. */
  async countLive (): Promise<number> {
    this.sweep()
    return this.#entries.size
  }

  async close (): Promise<void> {
    clearInterval(this.#timer)
    this.#entries.clear()
    this.#bytes = 0
  }
}
