/**
 * One way to open an ioredis client for every backend: bounded timeouts, no offline queue, so a
 * Redis that is down answers a fast error (503) instead of a hang, and reconnects on its own.
 */
import { Redis, type RedisOptions } from 'ioredis'

export interface RedisClientLogger {
  warn (obj: object, msg: string): void
  info (obj: object, msg: string): void
}

/** Per-command and connect timeouts (ms): short, as callers wait on them. */
export const REDIS_COMMAND_TIMEOUT_MS = 1000
export const REDIS_CONNECT_TIMEOUT_MS = 1000

/** Open a client for `url` (redis://host:port/db); the password in the URL never reaches a log line. */
export function createRedisClient (url: string, log: RedisClientLogger, extra: RedisOptions = {}): Redis {
  const client = new Redis(url, {
    lazyConnect: false,
    connectTimeout: REDIS_CONNECT_TIMEOUT_MS,
    commandTimeout: REDIS_COMMAND_TIMEOUT_MS,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    // Reconnect forever, backing off to at most 1 s, so recovery needs no restart.
    retryStrategy: (attempt) => Math.min(50 * 2 ** attempt, 1000),
    ...extra
  })
  const where = redactRedisUrl(url)
  let down = false
  const markDown = (reason: string): void => {
    if (!down) log.warn({ redis: where, err: reason }, 'redis unavailable')
    down = true
  }
  client.on('error', (err: Error) => markDown(err.message))
  // A dropped connection can come back before any 'error' is emitted: 'reconnecting' says it was lost.
  client.on('reconnecting', () => markDown('connection lost'))
  client.on('ready', () => {
    if (down) log.info({ redis: where }, 'redis reachable again')
    down = false
  })
  return client
}

/** The URL without its password, for logs. */
export function redactRedisUrl (url: string): string {
  try {
    const u = new URL(url)
    if (u.password !== '') u.password = '***'
    return u.toString()
  } catch {
    return '(invalid redis url)'
  }
}

/**
 * Settles once the client's first connection attempt is over: connected, failed, or still trying
 * after `timeoutMs`. Never rejects, so a caller can start while Redis is down (and answer 503).
 */
export function firstConnection (client: Redis, timeoutMs = REDIS_CONNECT_TIMEOUT_MS): Promise<void> {
  if (client.status === 'ready') return Promise.resolve()
  return new Promise<void>(resolve => {
    const over = (): void => {
      clearTimeout(timer)
      client.off('ready', over)
      client.off('error', over)
      resolve()
    }
    const timer = setTimeout(over, timeoutMs)
    timer.unref()
    client.once('ready', over)
    client.once('error', over)
  })
}
