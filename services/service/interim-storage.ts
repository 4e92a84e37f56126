/**
 * A minimal in-memory `StorageStore`, used by the Service API only while no Storage API plugin has
 * decorated `fastify.gmsStorage` (the Storage API is built on another branch; once merged, its store
 * is used and this file can go).
 */
import { randomUUID } from 'node:crypto'
import type { StorageStore, StoredData, StoredValue } from '../storage/store.js'

interface Entry { data: Record<string, StoredValue>, expiresAt: number }

export class InterimMemoryStorage implements StorageStore {
  readonly backend = 'memory'
  readonly #entries = new Map<string, Entry>()

  #live (id: string): Entry | undefined {
    const entry = this.#entries.get(id)
    if (entry !== undefined && entry.expiresAt <= Date.now()) {
      this.#entries.delete(id)
      return undefined
    }
    return entry
  }

  async create (data: StoredData, ttlSeconds: number): Promise<string> {
    const id = randomUUID()
    this.#entries.set(id, { data: { ...data }, expiresAt: Date.now() + ttlSeconds * 1000 })
    return id
  }

  async update (id: string, data: StoredData, ttlSeconds: number): Promise<boolean> {
    const entry = this.#live(id)
    if (entry === undefined) return false
    Object.assign(entry.data, data)
    entry.expiresAt = Date.now() + ttlSeconds * 1000
    return true
  }

  async getAll (id: string): Promise<StoredData | null> {
    return this.#live(id)?.data ?? null
  }

  async get (id: string, key: string): Promise<StoredValue | null> {
    return this.#live(id)?.data[key] ?? null
  }

  async delete (id: string): Promise<boolean> {
    return this.#entries.delete(id)
  }

  async deleteKey (id: string, key: string): Promise<boolean> {
    const entry = this.#live(id)
    if (entry === undefined || !(key in entry.data)) return false
    return delete entry.data[key]
  }

  async close (): Promise<void> {
    this.#entries.clear()
  }
}
