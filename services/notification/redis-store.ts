/**
 * Subscriptions in Redis, shared by every gms-gate instance on it. A subscription is one JSON
 * key with the subscription's TTL; exact filters index ids by tag (a set), wildcard filters sit in
 * one hash; a sorted set by expiry (`gms:notification:expiry`) counts live subscriptions for
 * `max_subscriptions` and the metrics. Index entries of expired subscriptions are dropped when a
 * publish finds them gone, and from the sorted set whenever it is counted.
 */
import { randomUUID } from 'node:crypto'
import type { Redis } from 'ioredis'
import { BackendUnavailableError } from '../../plugins/errors.js'
import { isWildcard, matchesFilter } from './filter.js'
import type { SubscriptionStore } from './store.js'
import type { Subscription, SubscriptionRequest } from './validate.js'

export const KEY_PREFIX = 'gms:notification:'
const EXPIRY = `${KEY_PREFIX}expiry`
const WILDCARDS = `${KEY_PREFIX}wildcards`
const subKey = (id: string): string => `${KEY_PREFIX}sub:${id}`
const tagKey = (tag: string): string => `${KEY_PREFIX}tag:${tag}`

// Count and add in one step, so instances racing for the last slot cannot overshoot max_subscriptions.
const ADD = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('SET', KEYS[2], ARGV[4], 'PX', ARGV[5])
redis.call('ZADD', KEYS[1], ARGV[6], ARGV[3])
if ARGV[7] == '1' then
  redis.call('HSET', KEYS[3], ARGV[3], ARGV[8])
else
  redis.call('SADD', KEYS[3], ARGV[3])
  if redis.call('PTTL', KEYS[3]) < tonumber(ARGV[5]) then redis.call('PEXPIRE', KEYS[3], ARGV[5]) end
end
return 1`

/** Run a Redis call; any failure (down, timeout) becomes a 503. */
export async function redisCall<T> (call: () => Promise<T>): Promise<T> {
  try {
    return await call()
  } catch (err) {
    if (err instanceof BackendUnavailableError) throw err
    throw new BackendUnavailableError('Redis')
  }
}

export class RedisSubscriptionStore implements SubscriptionStore {
  readonly backend = 'redis'
  readonly #redis: Redis

  constructor (redis: Redis) {
    this.#redis = redis
  }

  async add (request: SubscriptionRequest, max: number): Promise<Subscription | null> {
    const now = Date.now()
    const sub: Subscription = { ...request, id: randomUUID(), expiresAt: now + request.expire * 1000 }
    const wildcard = isWildcard(sub.filter)
    const added = await redisCall(() => this.#redis.eval(ADD, 3, EXPIRY, subKey(sub.id), wildcard ? WILDCARDS : tagKey(sub.filter),
      now, max, sub.id, JSON.stringify(sub), sub.expire * 1000, sub.expiresAt, wildcard ? '1' : '0', sub.filter))
    return added === 1 ? sub : null
  }

  async get (id: string): Promise<Subscription | null> {
    const json = await redisCall(() => this.#redis.get(subKey(id)))
    return json === null ? null : JSON.parse(json) as Subscription
  }

  async delete (id: string): Promise<boolean> {
    const sub = await this.get(id)
    if (sub === null) return false
    const removed = await redisCall(() => this.#redis.multi()
      .del(subKey(id))
      .zrem(EXPIRY, id)
      .hdel(WILDCARDS, id)
      .srem(tagKey(sub.filter), id)
      .exec())
    return (removed?.[0]?.[1] as number | undefined) === 1
  }

  async matching (tag: string): Promise<Subscription[]> {
    const [exact, wildcards] = await redisCall(() => Promise.all([
      this.#redis.smembers(tagKey(tag)),
      this.#redis.hgetall(WILDCARDS)
    ]))
    const ids = [...exact]
    for (const [id, filter] of Object.entries(wildcards)) if (matchesFilter(filter, tag)) ids.push(id)
    if (ids.length === 0) return []
    const found = await redisCall(() => this.#redis.mget(ids.map(subKey)))
    const live: Subscription[] = []
    const gone: string[] = []
    found.forEach((json, i) => {
      if (json === null) gone.push(ids[i]!)
      else live.push(JSON.parse(json) as Subscription)
    })
    if (gone.length > 0) {
      // Best effort: a failure here leaves stale index entries for the next publish to drop.
      this.#redis.multi().srem(tagKey(tag), ...gone).hdel(WILDCARDS, ...gone).zrem(EXPIRY, ...gone).exec().catch(() => {})
    }
    return live
  }

  /** Cluster-wide: every instance on this Redis counts the same subscriptions. Scores are expiry times in this process's clock, as in `add`. */
  async countLive (): Promise<number> {
    const replies = await redisCall(() => this.#redis.multi().zremrangebyscore(EXPIRY, '-inf', Date.now()).zcard(EXPIRY).exec())
    const failed = replies?.find(([err]) => err !== null)
    if (replies === null || failed !== undefined) throw new BackendUnavailableError('Redis')
    return replies[1]![1] as number
  }

  async close (): Promise<void> {}
}
