/**
 * Failure throttling with @fastify/rate-limit: two counters, per client IP (IPv6 masked to /64) and
 * per (IP, username), that count failed authentications only. The gate peeks before verifying
 * (`increment: false`) so a throttled client is answered 429 before any hash is computed, and
 * increments after a failure. Counters live in memory or in Redis (shared by instances).
 */
import { createHash } from 'node:crypto'
import { once } from 'node:events'
import type { FastifyBaseLogger, FastifyInstance, FastifyRequest } from 'fastify'
import rateLimit from '@fastify/rate-limit'
import { createRedisClient, REDIS_CONNECT_TIMEOUT_MS } from '../services/redis-client.js'
import type { SecuritySettings } from './security-settings.js'

/** What a peek or an increment says about a client. */
export interface ThrottleStatus {
  readonly throttled: boolean
  /** Seconds until the window that throttles it ends (0 when not throttled). */
  readonly retryAfter: number
}

/** Failure counters for the gate. */
export interface FailureThrottle {
  /** False when no counter can be over its limit (memory store, no failure within a window): a peek can be skipped. */
  active (): boolean
  /** Whether this client (and this username, when given) is over its limit; counts nothing. */
  peek (request: FastifyRequest, username: string | null): Promise<ThrottleStatus>
  /** Count one failure; `throttled` is true when this failure used up the last allowed one. */
  recordFailure (request: FastifyRequest, username: string | null): Promise<ThrottleStatus>
}

type Limiter = ReturnType<FastifyInstance['createRateLimit']>
type LimitResult = Awaited<ReturnType<Limiter>>

const kUsernameKey = Symbol('gms-gate.throttle.username')
type KeyedRequest = FastifyRequest & { [kUsernameKey]?: string }

const NOT_THROTTLED: ThrottleStatus = Object.freeze({ throttled: false, retryAfter: 0 })

/** A username in a counter key: hashed, so any length or byte keeps the key short and printable. */
function usernameKey (username: string): string {
  return createHash('sha256').update(username, 'utf8').digest('base64url').slice(0, 22)
}

// Over the limit once the failures counted reach it: max_failures = 5 allows exactly 5 failures.
function statusOf (result: LimitResult): ThrottleStatus {
  if (result.isAllowed || result.remaining > 0) return NOT_THROTTLED
  return { throttled: true, retryAfter: Math.max(1, result.ttlInSeconds) }
}

function worst (a: ThrottleStatus, b: ThrottleStatus): ThrottleStatus {
  if (!a.throttled) return b
  if (!b.throttled) return a
  return a.retryAfter >= b.retryAfter ? a : b
}

/**
 * Register @fastify/rate-limit in a context of its own (no route is limited by it: `global: false`)
 * and build the two failure counters. `settings` is read on each call, so a reload changes limits.
 */
export async function createFailureThrottle (fastify: FastifyInstance, initial: SecuritySettings, settings: () => SecuritySettings, log: FastifyBaseLogger): Promise<FailureThrottle> {
  let limiters: { ip: Limiter, user: Limiter } | undefined
  await fastify.register(async function failureCounters (child) {
    const redis = initial.throttleStore === 'redis' ? createRedisClient(initial.redisUrl, log) : undefined
    if (redis !== undefined) {
      child.addHook('onClose', async () => { redis.disconnect() })
      // Without an offline queue, counts made before the connection is up would be lost: wait for it (bounded).
      await Promise.race([once(redis, 'ready').catch(() => {}), new Promise(resolve => setTimeout(resolve, REDIS_CONNECT_TIMEOUT_MS).unref())])
    }
    await child.register(rateLimit, {
      global: false,
      redis,
      nameSpace: 'gms-gate-failures-',
      // A store that cannot answer must not lock everyone out: credentials are still checked.
      skipOnError: true
    })
    const common = {
      timeWindow: () => settings().failureWindowMs,
      skipOnError: true,
      // The per-process store keeps this many clients (least recently failed dropped first).
      cache: 100_000
    }
    limiters = {
      ip: child.createRateLimit({ ...common, max: () => settings().maxFailuresPerIp, keyGenerator: (req) => `ip:${rateLimit.normalizeIP(req.ip)}` }),
      user: child.createRateLimit({
        ...common,
        max: () => settings().maxFailures,
        keyGenerator: (req) => `user:${rateLimit.normalizeIP(req.ip)}:${(req as KeyedRequest)[kUsernameKey] ?? ''}`
      })
    }
  })
  const { ip, user } = limiters!
  // Memory counters only grow here: with no failure within a window, every counter is zero and a peek can be skipped.
  const shared = initial.throttleStore === 'redis'
  let lastFailureAt = -Infinity

  async function run (request: FastifyRequest, username: string | null, increment: boolean): Promise<ThrottleStatus> {
    if (username === null) return statusOf(await ip(request, { increment }))
    ;(request as KeyedRequest)[kUsernameKey] = usernameKey(username)
    const [byIp, byUser] = await Promise.all([ip(request, { increment }), user(request, { increment })])
    return worst(statusOf(byIp), statusOf(byUser))
  }

  const active = (): boolean => shared || Date.now() - lastFailureAt <= settings().failureWindowMs
  return {
    active,
    peek: async (request, username) => active() ? run(request, username, false) : NOT_THROTTLED,
    recordFailure: (request, username) => {
      lastFailureAt = Date.now()
      return run(request, username, true)
    }
  }
}

/** A username for a log line: at most 64 characters, anything outside printable ASCII escaped. */
export function loggableUsername (username: string): string {
  const capped = username.length > 64 ? `${username.slice(0, 64)}...` : username
  return capped.replace(/[^\x20-\x7e]|\\/g, c => c === '\\' ? '\\\\' : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
}
