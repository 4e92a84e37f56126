/**
 * The contract of a Storage API backend (memory or Redis). The Storage API serves it over HTTP;
 * the Service API keeps a service instance's user data in it (its `_data_id`).
 */
import { randomUUID } from 'node:crypto'

/** One stored value: a text field, or a file kept as bytes with its content type. */
export type StoredValue =
  | { readonly type: 'text', readonly value: string }
  | { readonly type: 'file', readonly data: Buffer, readonly contentType: string, readonly filename: string }

/** The keys of one storage id. */
export type StoredData = Readonly<Record<string, StoredValue>>

/** Per-call bounds a backend enforces atomically (they may change with every options reload). */
export interface UpdateLimits {
  /** The most keys the id may hold after the update; past it the update rejects with a 400 and changes nothing. */
  readonly maxKeys?: number
}

/**
 * A storage backend. Backend failures reject with `BackendUnavailableError` (503), never hang.
 * An id exists while it holds a key (as a Redis hash does): removing its last key removes it, and
 * creating one with no key gives an id that is unknown at once.
 */
export interface StorageStore {
  readonly backend: 'memory' | 'redis'
  /** Keep `data` under a new id for `ttlSeconds`; resolves to the id. A full backend rejects with `StorageFullError` (507). */
  create (data: StoredData, ttlSeconds: number): Promise<string>
  /** Add or update keys and reset the TTL; false when the id is unknown or expired. */
  update (id: string, data: StoredData, ttlSeconds: number, limits?: UpdateLimits): Promise<boolean>
  /** Every key of the id, or null when unknown or expired. */
  getAll (id: string): Promise<StoredData | null>
  /** One key, or null when the id or the key is unknown. */
  get (id: string, key: string): Promise<StoredValue | null>
  /** Remove the id; false when it did not exist. */
  delete (id: string): Promise<boolean>
  /** Remove one key; false when the id or key did not exist. */
  deleteKey (id: string, key: string): Promise<boolean>
  /** How many ids are live now (expired ones are dropped first); for metrics, not for the request path. */
  countLive (): Promise<number>
  /** Release timers and connections. */
  close (): Promise<void>
}

/** A new storage id: random, so an id cannot be guessed from another. */
export function newStorageId (): string {
  return randomUUID()
}

/** Does `id` have the shape `newStorageId` gives? Anything else is unknown without asking a backend. */
export function isStorageId (id: string): boolean {
  return /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(id)
}

/** A ttl in whole milliseconds, never 0 (0 would mean "no expiry" to some backends). */
export function ttlMilliseconds (ttlSeconds: number): number {
  return Math.max(1, Math.round(ttlSeconds * 1000))
}
