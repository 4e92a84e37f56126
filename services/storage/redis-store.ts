/**
 * The Redis storage backend: one hash per storage id (a field per key) with `PEXPIRE`, so every
 * gms-gate instance on the same Redis sees the same data and Redis does the expiry. Values are
 * kept as bytes (files included). A sorted set indexes the live ids by expiry, so counting them
 * costs no scan. Every write that changes the ids (create, update, delete of an id or of its last
 * key) is one Lua script or one MULTI, data and index together.
 */
import type { Redis } from 'ioredis'
import { BackendUnavailableError, TooManyKeysError } from '../../plugins/errors.js'
import { firstConnection } from '../redis-client.js'
import { newStorageId, ttlMilliseconds, type StorageStore, type StoredData, type StoredValue, type UpdateLimits } from './store.js'

/** Prefix of the hash of every id (`gms-gate:storage:<id>`). */
export const KEY_PREFIX = 'gms-gate:storage:'
/** The index of live ids (member: id, score: expiry in Redis's clock, ms); outside `KEY_PREFIX`, so no id can name it. */
export const INDEX_KEY = 'gms-gate:storage-index'

const TEXT = 0x74 // 't'
const FILE = 0x66 // 'f'

/** One value as the bytes of a hash field: a tag, then the text, or a header (content type, file name) and the file. */
export function encodeValue (value: StoredValue): Buffer {
  if (value.type === 'text') return Buffer.concat([Buffer.of(TEXT), Buffer.from(value.value, 'utf8')])
  const header = Buffer.from(JSON.stringify([value.contentType, value.filename]), 'utf8')
  const length = Buffer.alloc(4)
  length.writeUInt32BE(header.length)
  return Buffer.concat([Buffer.of(FILE), length, header, value.data])
}

/** The inverse of `encodeValue`; null for bytes it did not write. */
export function decodeValue (bytes: Buffer): StoredValue | null {
  if (bytes[0] === TEXT) return { type: 'text', value: bytes.toString('utf8', 1) }
  if (bytes[0] !== FILE || bytes.length < 5) return null
  const end = 5 + bytes.readUInt32BE(1)
  if (end > bytes.length) return null
  try {
    const [contentType, filename] = JSON.parse(bytes.toString('utf8', 5, end)) as unknown[]
    if (typeof contentType !== 'string' || typeof filename !== 'string') return null
    return { type: 'file', contentType, filename, data: bytes.subarray(end) }
  } catch {
    return null
  }
}

// Redis's clock in ms, so index scores and PEXPIRE agree whatever the clocks of the instances.
const NOW_MS = `
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
`

// KEYS[1]: the new id's hash; KEYS[2]: the index. ARGV[1]: the id; ARGV[2]: ttl in ms; then field, value pairs.
// Also drops a few expired index entries, so the index stays small even if nobody ever counts.
const CREATE = `${NOW_MS}
for i = 3, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], string.format('%d', now + tonumber(ARGV[2])), ARGV[1])
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', string.format('%d', now), 'LIMIT', 0, 8)
if #expired > 0 then redis.call('ZREM', KEYS[2], unpack(expired)) end
return 1
`

// KEYS[1]: the id's hash; KEYS[2]: the index. ARGV[1]: the id; ARGV[2]: ttl in ms; ARGV[3]: max keys (0: no bound);
// then field, value pairs. Returns 0 for an unknown id, -count when the id would hold more than max keys
// (nothing written), 1 when done.
const UPDATE = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local max = tonumber(ARGV[3])
if max > 0 then
  local count = redis.call('HLEN', KEYS[1])
  for i = 4, #ARGV, 2 do
    if redis.call('HEXISTS', KEYS[1], ARGV[i]) == 0 then count = count + 1 end
  end
  if count > max then return -count end
end
${NOW_MS}
for i = 4, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], string.format('%d', now + tonumber(ARGV[2])), ARGV[1])
return 1
`

// KEYS[1]: the id's hash; KEYS[2]: the index. ARGV[1]: the id; ARGV[2]: the key. Returns what HDEL returns.
const DELETE_KEY = `
local removed = redis.call('HDEL', KEYS[1], ARGV[2])
if removed == 1 and redis.call('EXISTS', KEYS[1]) == 0 then redis.call('ZREM', KEYS[2], ARGV[1]) end
return removed
`

// KEYS[1]: the index. Drops the expired entries, then counts the rest.
const COUNT = `${NOW_MS}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%d', now))
return redis.call('ZCARD', KEYS[1])
`

interface StorageCommands {
  gmsStorageCreate (key: string, index: string, id: string, ttlMs: number, ...fields: Array<string | Buffer>): Promise<number>
  gmsStorageUpdate (key: string, index: string, id: string, ttlMs: number, maxKeys: number, ...fields: Array<string | Buffer>): Promise<number>
  gmsStorageDeleteKey (key: string, index: string, id: string, field: string): Promise<number>
  gmsStorageCount (index: string): Promise<number>
}

function fieldArgs (data: StoredData): Array<string | Buffer> {
  const args: Array<string | Buffer> = []
  for (const [key, value] of Object.entries(data)) args.push(key, encodeValue(value))
  return args
}

export class RedisStore implements StorageStore {
  readonly backend = 'redis'
  readonly #client: Redis & StorageCommands
  /** Settles once the first connection attempt is over (ready or failed). */
  readonly #firstAttempt: Promise<void>
  #firstAttemptOver = false

  /** Takes ownership of `client` (from `createRedisClient`): `close` quits it. */
  constructor (client: Redis) {
    client.defineCommand('gmsStorageCreate', { numberOfKeys: 2, lua: CREATE })
    client.defineCommand('gmsStorageUpdate', { numberOfKeys: 2, lua: UPDATE })
    client.defineCommand('gmsStorageDeleteKey', { numberOfKeys: 2, lua: DELETE_KEY })
    client.defineCommand('gmsStorageCount', { numberOfKeys: 1, lua: COUNT })
    this.#client = client as Redis & StorageCommands
    this.#firstAttempt = firstConnection(client).then(() => { this.#firstAttemptOver = true })
  }

  /**
   * Run commands against Redis; any failure becomes a 503. Without an offline queue a command sent
   * while disconnected fails at once, so only a store that was just opened waits (bounded) for its
   * first connection: the first requests after a start or a backend switch are served, not refused.
   */
  async #run<T> (commands: (client: Redis & StorageCommands) => Promise<T>): Promise<T> {
    if (!this.#firstAttemptOver) await this.#firstAttempt
    try {
      return await commands(this.#client)
    } catch (err) {
      throw new BackendUnavailableError('storage backend (redis)', { cause: err })
    }
  }

  async create (data: StoredData, ttlSeconds: number): Promise<string> {
    const id = newStorageId()
    const fields = fieldArgs(data)
    // An empty hash does not exist in Redis: an id created without keys is unknown at once.
    if (fields.length === 0) return id
    await this.#run(client => client.gmsStorageCreate(KEY_PREFIX + id, INDEX_KEY, id, ttlMilliseconds(ttlSeconds), ...fields))
    return id
  }

  async update (id: string, data: StoredData, ttlSeconds: number, limits: UpdateLimits = {}): Promise<boolean> {
    const maxKeys = limits.maxKeys ?? 0
    const result = await this.#run(client =>
      client.gmsStorageUpdate(KEY_PREFIX + id, INDEX_KEY, id, ttlMilliseconds(ttlSeconds), maxKeys, ...fieldArgs(data)))
    if (result < 0) throw new TooManyKeysError(-result, maxKeys)
    return result === 1
  }

  async getAll (id: string): Promise<StoredData | null> {
    const fields = await this.#run(client => client.hgetallBuffer(KEY_PREFIX + id))
    const entries = Object.entries(fields)
    if (entries.length === 0) return null
    const data: Array<[string, StoredValue]> = []
    for (const [key, bytes] of entries) {
      const value = decodeValue(bytes)
      if (value !== null) data.push([key, value])
    }
    return Object.fromEntries(data)
  }

  async get (id: string, key: string): Promise<StoredValue | null> {
    const bytes = await this.#run(client => client.hgetBuffer(KEY_PREFIX + id, key))
    return bytes === null ? null : decodeValue(bytes)
  }

  async delete (id: string): Promise<boolean> {
    const deleted = await this.#run(async client => {
      const replies = await client.multi().del(KEY_PREFIX + id).zrem(INDEX_KEY, id).exec()
      const failed = replies?.find(([err]) => err !== null)
      if (replies === null || failed !== undefined) throw failed?.[0] ?? new Error('MULTI aborted')
      return replies[0]![1]
    })
    return deleted === 1
  }

  async deleteKey (id: string, key: string): Promise<boolean> {
    return (await this.#run(client => client.gmsStorageDeleteKey(KEY_PREFIX + id, INDEX_KEY, id, key))) === 1
  }

  async countLive (): Promise<number> {
    return await this.#run(client => client.gmsStorageCount(INDEX_KEY))
  }

  /** Quit cleanly (pending replies first), then make sure no reconnection is left behind. */
  async close (): Promise<void> {
    const client = this.#client
    if (client.status === 'ready') await client.quit().catch(() => {})
    client.disconnect()
  }
}
