/**
 * The contract of a Storage API backend (memory or Redis). The Storage API serves it over HTTP;
 * the Service API keeps a service instance's user data in it (its `_data_id`).
 */

/** One stored value: a text field, or a file kept as bytes with its content type. */
export type StoredValue =
  | { readonly type: 'text', readonly value: string }
  | { readonly type: 'file', readonly data: Buffer, readonly contentType: string, readonly filename: string }

/** The keys of one storage id. */
export type StoredData = Readonly<Record<string, StoredValue>>

/** A storage backend. Backend failures reject with `BackendUnavailableError` (503), never hang. */
export interface StorageStore {
  readonly backend: 'memory' | 'redis'
  /** Keep `data` under a new id for `ttlSeconds`; resolves to the id. */
  create (data: StoredData, ttlSeconds: number): Promise<string>
  /** Add or update keys and reset the TTL; false when the id is unknown or expired. */
  update (id: string, data: StoredData, ttlSeconds: number): Promise<boolean>
  /** Every key of the id, or null when unknown or expired. */
  getAll (id: string): Promise<StoredData | null>
  /** One key, or null when the id or the key is unknown. */
  get (id: string, key: string): Promise<StoredValue | null>
  /** Remove the id; false when it did not exist. */
  delete (id: string): Promise<boolean>
  /** Remove one key; false when the id or key did not exist. */
  deleteKey (id: string, key: string): Promise<boolean>
  /** Release timers and connections. */
  close (): Promise<void>
}
