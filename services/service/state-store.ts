/**
 * Where service instances and access-number reservations live: in memory (one process) or in Redis
 * (shared by every gms-gate instance, claims made atomic with SET NX PX so two instances never hand
 * out the same number and code).
 */
import type { Redis } from 'ioredis'
import { BackendUnavailableError } from '../../plugins/errors.js'

/** Who holds a reservation: enough for match-interaction to answer and to check the caller's phone. */
export interface Reservation {
  readonly id: string
  readonly dataId: string
  readonly phoneNumber: string
}

/** One live service instance (what `/service/<_id>` follow-ups and DELETE find). */
export interface InstanceRecord {
  readonly id: string
  /** The `<name>` of the `[service.<name>]` that created it. */
  readonly service: string
  readonly dataId: string
  readonly accessNumber?: string
  /** Empty when no code was reserved. */
  readonly accessCode?: string
}

export interface ServiceStateStore {
  readonly backend: 'memory' | 'redis'
  /** Reserve `(number, code)` for `holder` unless someone holds it; code `''` means "the number alone". */
  claim (number: string, code: string, holder: Reservation, ttlMs: number): Promise<boolean>
  /** Find and release the reservation of `(number, code)` in one step; null when none (or the phone differs). */
  take (number: string, code: string, phoneNumber: string | undefined): Promise<Reservation | null>
  /** Release `(number, code)` if `id` still holds it. */
  release (number: string, code: string, id: string): Promise<void>
  putInstance (record: InstanceRecord, ttlMs: number): Promise<void>
  getInstance (id: string): Promise<InstanceRecord | null>
  /** Remove an instance; resolves to what it was, or null when unknown or expired. */
  deleteInstance (id: string): Promise<InstanceRecord | null>
  close (): Promise<void>
}

interface Timed<T> { value: T, expiresAt: number }

/** One process's state; `now` is injectable so expiry is tested without waiting. */
export class MemoryStateStore implements ServiceStateStore {
  readonly backend = 'memory'
  readonly #claims = new Map<string, Timed<Reservation>>()
  readonly #instances = new Map<string, Timed<InstanceRecord>>()
  readonly #now: () => number
  readonly #sweeper: NodeJS.Timeout

  constructor (now: () => number = Date.now) {
    this.#now = now
    // Expired entries are ignored when read; the sweep only bounds memory.
    this.#sweeper = setInterval(() => this.#sweep(), 10_000).unref()
  }

  #live<T> (map: Map<string, Timed<T>>, key: string): T | null {
    const entry = map.get(key)
    if (entry === undefined) return null
    if (entry.expiresAt <= this.#now()) {
      map.delete(key)
      return null
    }
    return entry.value
  }

  #sweep (): void {
    const now = this.#now()
    for (const map of [this.#claims, this.#instances] as Array<Map<string, Timed<unknown>>>) {
      for (const [key, entry] of map) if (entry.expiresAt <= now) map.delete(key)
    }
  }

  async claim (number: string, code: string, holder: Reservation, ttlMs: number): Promise<boolean> {
    const key = claimKey(number, code)
    if (this.#live(this.#claims, key) !== null) return false
    this.#claims.set(key, { value: holder, expiresAt: this.#now() + ttlMs })
    return true
  }

  async take (number: string, code: string, phoneNumber: string | undefined): Promise<Reservation | null> {
    const key = claimKey(number, code)
    const held = this.#live(this.#claims, key)
    if (held === null || (phoneNumber !== undefined && held.phoneNumber !== phoneNumber)) return null
    this.#claims.delete(key)
    return held
  }

  async release (number: string, code: string, id: string): Promise<void> {
    const key = claimKey(number, code)
    if (this.#live(this.#claims, key)?.id === id) this.#claims.delete(key)
  }

  async putInstance (record: InstanceRecord, ttlMs: number): Promise<void> {
    this.#instances.set(record.id, { value: record, expiresAt: this.#now() + ttlMs })
  }

  async getInstance (id: string): Promise<InstanceRecord | null> {
    return this.#live(this.#instances, id)
  }

  async deleteInstance (id: string): Promise<InstanceRecord | null> {
    const record = this.#live(this.#instances, id)
    this.#instances.delete(id)
    return record
  }

  async close (): Promise<void> {
    clearInterval(this.#sweeper)
  }
}

function claimKey (number: string, code: string): string {
  return `${number}:${code}`
}

const PREFIX = 'gms-gate:service:'

// Find-and-release in one round trip, refusing a reservation made for another phone.
const TAKE = `local v = redis.call('GET', KEYS[1])
if not v then return nil end
if ARGV[1] ~= '' and cjson.decode(v).phoneNumber ~= ARGV[1] then return nil end
redis.call('DEL', KEYS[1])
return v`
// Release only what this instance still holds (a later claim by another instance stays).
const RELEASE = `local v = redis.call('GET', KEYS[1])
if v and cjson.decode(v).id == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0`

/** State shared by every gms-gate instance on one Redis (the client comes from `createRedisClient`). */
export class RedisStateStore implements ServiceStateStore {
  readonly backend = 'redis'
  readonly #redis: Redis

  constructor (redis: Redis) {
    this.#redis = redis
  }

  async #call<T> (fn: (redis: Redis) => Promise<T>): Promise<T> {
    try {
      return await fn(this.#redis)
    } catch (err) {
      throw new BackendUnavailableError('Redis (service state)', { cause: err })
    }
  }

  async claim (number: string, code: string, holder: Reservation, ttlMs: number): Promise<boolean> {
    const set = await this.#call(r => r.set(PREFIX + 'claim:' + claimKey(number, code), JSON.stringify(holder), 'PX', ttlMs, 'NX'))
    return set === 'OK'
  }

  async take (number: string, code: string, phoneNumber: string | undefined): Promise<Reservation | null> {
    const raw = await this.#call(r => r.eval(TAKE, 1, PREFIX + 'claim:' + claimKey(number, code), phoneNumber ?? '')) as string | null
    return raw === null ? null : JSON.parse(raw) as Reservation
  }

  async release (number: string, code: string, id: string): Promise<void> {
    await this.#call(r => r.eval(RELEASE, 1, PREFIX + 'claim:' + claimKey(number, code), id))
  }

  async putInstance (record: InstanceRecord, ttlMs: number): Promise<void> {
    await this.#call(r => r.set(PREFIX + 'instance:' + record.id, JSON.stringify(record), 'PX', ttlMs))
  }

  async getInstance (id: string): Promise<InstanceRecord | null> {
    const raw = await this.#call(r => r.get(PREFIX + 'instance:' + id))
    return raw === null ? null : JSON.parse(raw) as InstanceRecord
  }

  async deleteInstance (id: string): Promise<InstanceRecord | null> {
    const raw = await this.#call(r => r.getdel(PREFIX + 'instance:' + id))
    return raw === null ? null : JSON.parse(raw) as InstanceRecord
  }

  async close (): Promise<void> {
    this.#redis.disconnect()
  }
}
