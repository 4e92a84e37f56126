/**
 * The `[storage]` options as typed, validated settings, compiled once per options load. Pure: a bad
 * value is an `OptionsError` naming its line, so a reload that carries one is refused whole.
 */
import { OptionsError, type OptionsSnapshot } from '../../plugins/options-file.js'

/** Which backend keeps storage data. */
export type StorageBackend = 'memory' | 'redis'

/** The Storage API's settings, from `[storage]` with defaults filled in. */
export interface StorageSettings {
  /** `backend`: `memory` (default) or `redis`. */
  readonly backend: StorageBackend
  /** `redis_url`: where the Redis backend connects (used when `backend = redis`). */
  readonly redisUrl: string
  /** `max_ttl` in seconds: a longer ttl is refused with a 400. */
  readonly maxTtlSeconds: number
  /** `max_value_bytes`: the largest value (text or file) one key may hold. */
  readonly maxValueBytes: number
  /** `max_body_bytes`: the largest request body. */
  readonly maxBodyBytes: number
  /** `max_keys`: how many keys one storage id may hold. */
  readonly maxKeys: number
  /** `max_entries`: how many ids the memory backend keeps at once (507 past it). */
  readonly maxEntries: number
  /** `max_memory_bytes`: how many bytes of keys and values the memory backend keeps at once (507 past it). */
  readonly maxMemoryBytes: number
}

/** GMS: a ttl that is not a positive number means 30 seconds. */
export const DEFAULT_TTL_SECONDS = 30
/** Routes accept bodies up to this; `max_body_bytes` picks the limit in force below it. */
export const BODY_BYTES_CEILING = 1024 ** 3

const MiB = 1024 * 1024

export const STORAGE_DEFAULTS: StorageSettings = Object.freeze({
  backend: 'memory',
  redisUrl: 'redis://127.0.0.1:6379/0',
  maxTtlSeconds: 30 * 24 * 3600,
  maxValueBytes: MiB,
  maxBodyBytes: 10 * MiB,
  maxKeys: 100,
  maxEntries: 100_000,
  maxMemoryBytes: 256 * MiB
})

/** Validate `[storage]` (absent means every default). Throws `OptionsError` naming the line. */
export function compileStorageSettings (options: OptionsSnapshot): StorageSettings {
  const section = options.sections.get('storage')
  if (section === undefined) return STORAGE_DEFAULTS
  const v = section.values
  const fail = (key: string, reason: string): never => {
    throw new OptionsError(options.file, section.lines[key] ?? section.line, `${key} in [storage] ${reason}`)
  }

  const backend = v.backend ?? STORAGE_DEFAULTS.backend
  if (backend !== 'memory' && backend !== 'redis') fail('backend', `must be "memory" or "redis", got ${JSON.stringify(backend)}`)

  const redisUrl = v.redis_url ?? STORAGE_DEFAULTS.redisUrl
  if (v.redis_url !== undefined) {
    let url: URL | undefined
    try { url = new URL(redisUrl) } catch {}
    // The value is not quoted back: a redis URL may hold a password.
    if (url === undefined || (url.protocol !== 'redis:' && url.protocol !== 'rediss:') || url.hostname === '') {
      fail('redis_url', 'must be a URL like redis://host:6379/0 (or rediss:// for TLS)')
    }
    if (!/^\/?(\d+)?$/.test(url!.pathname)) fail('redis_url', 'may name a database by its number only (redis://host:6379/0)')
  }

  const size = (key: string, fallback: number): number => {
    const raw = v[key]
    if (raw === undefined) return fallback
    const n = /^\d+$/.test(raw) ? Number(raw) : NaN
    if (!(n > 0) || !Number.isSafeInteger(n)) fail(key, `must be a whole number above 0, got ${JSON.stringify(raw)}`)
    return n
  }
  const d = STORAGE_DEFAULTS
  const settings: StorageSettings = {
    backend: backend as StorageBackend,
    redisUrl,
    maxTtlSeconds: size('max_ttl', d.maxTtlSeconds),
    maxValueBytes: size('max_value_bytes', d.maxValueBytes),
    maxBodyBytes: size('max_body_bytes', d.maxBodyBytes),
    maxKeys: size('max_keys', d.maxKeys),
    maxEntries: size('max_entries', d.maxEntries),
    maxMemoryBytes: size('max_memory_bytes', d.maxMemoryBytes)
  }
  if (settings.maxBodyBytes > BODY_BYTES_CEILING) fail('max_body_bytes', `must be at most ${BODY_BYTES_CEILING} (1 GiB)`)
  if (settings.maxBodyBytes < settings.maxValueBytes) {
    fail(v.max_body_bytes !== undefined ? 'max_body_bytes' : 'max_value_bytes',
      `leaves no room for one value: max_body_bytes (${settings.maxBodyBytes}) must be at least max_value_bytes (${settings.maxValueBytes})`)
  }
  return Object.freeze(settings)
}
