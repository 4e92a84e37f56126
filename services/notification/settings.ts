/**
 * `[notification]` options compiled into typed settings. Pure: a bad value throws `OptionsError`
 * with its line, so it is refused at start (exit 2) and on reload (the last good options stay).
 */
import { OptionsError, type OptionsSnapshot, type Section } from '../../plugins/options-file.js'
import { parseCallbackAllow, type CallbackAllowList } from './callback-allow.js'

/** Delivery types this gate implements. */
export type DeliveryType = 'httpcb' | 'customhttp' | 'sse'
export const DELIVERY_TYPES: readonly DeliveryType[] = ['httpcb', 'customhttp', 'sse']
/** GMS push types we do not implement: accepted in `push_enabled` and ignored, as GMS ignores unknown ones. */
const GMS_ONLY_TYPES = new Set(['android', 'gcm', 'ios', 'orscb', 'fcm', 'comet', 'wns'])

/** How failed callbacks are retried. */
export interface RetryPolicy {
  /** Attempts in all, the first included (>= 1). */
  readonly attempts: number
  /** Wait before the second attempt (ms); doubled after each failure. */
  readonly initialMs: number
  /** Longest wait between attempts (ms). */
  readonly maxMs: number
  /** Time allowed for one attempt, connect to response status (ms). */
  readonly timeoutMs: number
}

/** What `[notification]` says, typed and checked. */
export interface NotificationSettings {
  /** Where subscriptions live; read at start only. */
  readonly backend: 'memory' | 'redis'
  /** Redis URL when `backend = redis`; read at start only. */
  readonly redisUrl: string | undefined
  /** Subscription lifetime in seconds when the subscriber gives none (GMS: 30). */
  readonly defaultExpiration: number
  /** Delivery types subscribers may ask for. */
  readonly pushEnabled: ReadonlySet<DeliveryType>
  /** Where `customhttp` deliveries are posted. */
  readonly customhttpUrl: string | undefined
  /** Live subscriptions allowed at once (per backend, so shared across instances with Redis). */
  readonly maxSubscriptions: number
  /** Largest published `message`, in UTF-8 bytes. */
  readonly maxMessageBytes: number
  readonly retry: RetryPolicy
  /** Hosts and networks a callback may target. */
  readonly callbackAllow: CallbackAllowList
}

export const NOTIFICATION_DEFAULTS = {
  defaultExpiration: 30,
  /** customhttp joins these when customhttp_url is set. */
  pushEnabled: 'httpcb,sse',
  maxSubscriptions: 10_000,
  maxMessageBytes: 64 * 1024,
  retry: { attempts: 3, initialMs: 500, maxMs: 30_000, timeoutMs: 5000 },
  callbackAllow: '127.0.0.0/8, ::1, localhost'
} as const

/** Compile `[notification]` of a snapshot (absent section: every default). */
export function compileNotificationSettings (options: OptionsSnapshot): NotificationSettings {
  const section: Section = options.sections.get('notification') ?? { name: 'notification', line: 0, values: {}, lines: {} }
  const v = section.values
  const fail = (key: string, reason: string): never => {
    throw new OptionsError(options.file, section.lines[key] ?? section.line, `${key} in [notification] ${reason}`)
  }
  const integer = (key: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number => {
    const raw = v[key]
    if (raw === undefined) return fallback
    if (!/^\d+$/.test(raw.trim()) || Number(raw) < min || Number(raw) > max) {
      return fail(key, `must be a whole number from ${min} to ${max}, got ${JSON.stringify(raw)}`)
    }
    return Number(raw)
  }
  const url = (key: string): string | undefined => {
    const raw = v[key]
    if (raw === undefined) return undefined
    let parsed: URL
    try {
      parsed = new URL(raw)
    } catch {
      return fail(key, 'is not a valid URL')
    }
    const schemes = key === 'redis_url' ? ['redis:', 'rediss:'] : ['http:', 'https:']
    if (!schemes.includes(parsed.protocol)) fail(key, `must be a ${schemes.join(' or ')} URL`)
    return raw
  }

  const backend = v.backend ?? 'memory'
  if (backend !== 'memory' && backend !== 'redis') return fail('backend', `must be "memory" or "redis", got ${JSON.stringify(backend)}`)
  const redisUrl = url('redis_url')
  if (backend === 'redis' && redisUrl === undefined) fail('backend', 'is "redis" but redis_url is not set')

  const customhttpUrl = url('customhttp_url')
  const pushEnabled = new Set<DeliveryType>()
  const defaultTypes = NOTIFICATION_DEFAULTS.pushEnabled + (customhttpUrl === undefined ? '' : ',customhttp')
  for (const item of (v.push_enabled ?? defaultTypes).split(',')) {
    const type = item.trim()
    if (type === '' || GMS_ONLY_TYPES.has(type)) continue
    if (!(DELIVERY_TYPES as readonly string[]).includes(type)) {
      fail('push_enabled', `lists unknown delivery type ${JSON.stringify(type)} (known: ${DELIVERY_TYPES.join(', ')})`)
    }
    pushEnabled.add(type as DeliveryType)
  }
  if (v.push_enabled !== undefined && pushEnabled.has('customhttp') && customhttpUrl === undefined) {
    fail('push_enabled', 'enables customhttp but customhttp_url is not set')
  }

  const retry = {
    attempts: integer('retry_attempts', NOTIFICATION_DEFAULTS.retry.attempts, 1, 20),
    initialMs: integer('retry_initial_ms', NOTIFICATION_DEFAULTS.retry.initialMs, 0, 3_600_000),
    maxMs: integer('retry_max_ms', NOTIFICATION_DEFAULTS.retry.maxMs, 0, 3_600_000),
    timeoutMs: integer('delivery_timeout_ms', NOTIFICATION_DEFAULTS.retry.timeoutMs, 1, 600_000)
  }
  if (retry.maxMs < retry.initialMs) fail(v.retry_max_ms !== undefined ? 'retry_max_ms' : 'retry_initial_ms', 'makes retry_max_ms smaller than retry_initial_ms')

  let callbackAllow: CallbackAllowList
  try {
    callbackAllow = parseCallbackAllow(v.callback_allow ?? NOTIFICATION_DEFAULTS.callbackAllow)
  } catch (err) {
    return fail('callback_allow', (err as Error).message)
  }

  return Object.freeze({
    backend,
    redisUrl,
    defaultExpiration: integer('default_expiration', NOTIFICATION_DEFAULTS.defaultExpiration, 1, 31_536_000),
    pushEnabled,
    customhttpUrl,
    maxSubscriptions: integer('max_subscriptions', NOTIFICATION_DEFAULTS.maxSubscriptions, 1),
    maxMessageBytes: integer('max_message_bytes', NOTIFICATION_DEFAULTS.maxMessageBytes, 1, 16 * 1024 * 1024),
    retry: Object.freeze(retry),
    callbackAllow
  })
}
