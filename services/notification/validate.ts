/**
 * Subscribe and publish bodies checked and normalised. Pure: each problem is a `BadRequestError`
 * (400) naming the field; the callback allow-list (which may need DNS) is checked by the caller.
 */
import { BadRequestError } from '../../plugins/errors.js'
import type { DeliveryType, NotificationSettings } from './settings.js'

/** A subscription as kept by a backend. `authorization` is a secret: never logged, never answered. */
export interface Subscription {
  readonly id: string
  readonly subscriberId: string
  readonly providerName?: string
  readonly filter: string
  readonly type: DeliveryType
  /** Callback URL (httpcb), the subscriber's own id (customhttp), unused for sse. */
  readonly deviceId?: string
  readonly properties?: Readonly<Record<string, string>>
  /** base64 `user:pass`, sent as Basic auth on delivery. */
  readonly authorization?: string
  /** Lifetime in seconds, as asked. */
  readonly expire: number
  /** Epoch ms after which the subscription is gone. */
  readonly expiresAt: number
}

/** A subscription request before it has an id. */
export type SubscriptionRequest = Omit<Subscription, 'id' | 'expiresAt'>

/** A published event. */
export interface PublishedEvent {
  readonly id: string
  readonly tag: string
  readonly message: string
  readonly mediaType?: string
  /** Epoch ms after which the event is no longer delivered (from `expire`), if any. */
  readonly expiresAt?: number
}

export type PublishRequest = Omit<PublishedEvent, 'id' | 'expiresAt'> & { readonly expire?: number }

const MAX_TEXT = 1024
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/
const MEDIA_TYPE = /^[\w!#$&^.+-]+\/[\w!#$&^.+-]+(\s*;\s*[\w!#$&^.+-]+=("[^"\\\r\n]*"|[\w!#$&^.+-]+))*$/

const bad = (message: string): Error => new BadRequestError(message)

function isObject (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function text (body: Record<string, unknown>, field: string, path: string, required: boolean): string | undefined {
  const value = body[field]
  if (value === undefined || value === null) {
    if (required) throw bad(`${path} is required`)
    return undefined
  }
  if (typeof value !== 'string' || value.trim() === '') throw bad(`${path} must be a non-empty string`)
  if (value.length > MAX_TEXT) throw bad(`${path} is longer than ${MAX_TEXT} characters`)
  if (CONTROL.test(value)) throw bad(`${path} must not contain control characters`)
  return value
}

function seconds (value: unknown, path: string): number | undefined {
  if (value === undefined || value === null) return undefined
  // GMS clients send numbers or numeric strings alike.
  const n = typeof value === 'string' && /^\d+$/.test(value.trim()) ? Number(value) : value
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 31_536_000) {
    throw bad(`${path} must be a whole number of seconds from 1 to 31536000`)
  }
  return n
}

/** Check a subscribe body against the settings in force. */
export function parseSubscriptionRequest (body: unknown, settings: NotificationSettings): SubscriptionRequest {
  if (!isObject(body)) throw bad('the body must be a JSON object')
  const subscriberId = text(body, 'subscriberId', 'subscriberId', true)!
  const filter = text(body, 'filter', 'filter', true)!
  const providerName = text(body, 'providerName', 'providerName', false)
  const expire = seconds(body.expire, 'expire') ?? settings.defaultExpiration

  const details = body.notificationDetails
  if (details === undefined || details === null) throw bad('notificationDetails is required')
  if (!isObject(details)) throw bad('notificationDetails must be an object')
  const type = text(details, 'type', 'notificationDetails.type', true)!
  if (!settings.pushEnabled.has(type as DeliveryType)) {
    throw bad(`notificationDetails.type ${JSON.stringify(type)} is not enabled (push_enabled: ${[...settings.pushEnabled].join(', ') || 'none'})`)
  }
  const deliveryType = type as DeliveryType
  const deviceId = text(details, 'deviceId', 'notificationDetails.deviceId', deliveryType !== 'sse')
  if (deliveryType === 'httpcb') callbackUrl(deviceId!, 'notificationDetails.deviceId')
  if (deliveryType === 'customhttp' && settings.customhttpUrl === undefined) {
    throw bad('notificationDetails.type "customhttp" needs [notification] customhttp_url, which is not set')
  }

  let properties: Record<string, string> | undefined
  if (details.properties !== undefined && details.properties !== null) {
    if (!isObject(details.properties)) throw bad('notificationDetails.properties must be an object of strings')
    properties = {}
    for (const [key, value] of Object.entries(details.properties)) {
      if (typeof value !== 'string') throw bad(`notificationDetails.properties.${key} must be a string`)
      properties[key] = value
    }
  }

  const authorization = text(body, 'authorization', 'authorization', false)
  if (authorization !== undefined && !isBasicCredentials(authorization)) {
    throw bad('authorization must be base64 of "user:password"')
  }

  return {
    subscriberId,
    filter,
    type: deliveryType,
    expire,
    ...(providerName !== undefined && { providerName }),
    ...(deviceId !== undefined && { deviceId }),
    ...(properties !== undefined && { properties }),
    ...(authorization !== undefined && { authorization })
  }
}

/** An http(s) URL without credentials in it (they go in `authorization`). */
export function callbackUrl (value: string, path: string): URL {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw bad(`${path} must be an http or https URL`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw bad(`${path} must be an http or https URL`)
  if (url.username !== '' || url.password !== '') throw bad(`${path} must not hold credentials; send them in authorization`)
  return url
}

function isBasicCredentials (value: string): boolean {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(value) || value.length % 4 !== 0) return false
  const decoded = Buffer.from(value, 'base64').toString('utf8')
  // eslint-disable-next-line no-control-regex
  return decoded.includes(':') && !/[\u0000-\u001f\u007f]/.test(decoded)
}

/** Check a publish body against the settings in force. */
export function parsePublishRequest (body: unknown, settings: NotificationSettings): PublishRequest {
  if (!isObject(body)) throw bad('the body must be a JSON object')
  const tag = text(body, 'tag', 'tag', true)!
  const message = body.message
  if (message === undefined || message === null) throw bad('message is required')
  if (typeof message !== 'string') throw bad('message must be a string')
  if (Buffer.byteLength(message, 'utf8') > settings.maxMessageBytes) {
    throw bad(`message is larger than [notification] max_message_bytes (${settings.maxMessageBytes} bytes)`)
  }
  const mediaType = text(body, 'mediaType', 'mediaType', false)
  if (mediaType !== undefined && !MEDIA_TYPE.test(mediaType)) throw bad('mediaType must be a media type such as "text/plain"')
  const expire = seconds(body.expire, 'expire')
  return {
    tag,
    message,
    ...(mediaType !== undefined && { mediaType }),
    ...(expire !== undefined && { expire })
  }
}

/** What GET answers for a subscription: everything but the secret. */
export function describeSubscription (sub: Subscription): Record<string, unknown> {
  return {
    id: sub.id,
    subscriberId: sub.subscriberId,
    ...(sub.providerName !== undefined && { providerName: sub.providerName }),
    filter: sub.filter,
    notificationDetails: {
      type: sub.type,
      ...(sub.deviceId !== undefined && { deviceId: sub.deviceId }),
      ...(sub.properties !== undefined && { properties: sub.properties })
    },
    expire: sub.expire,
    expiresAt: new Date(sub.expiresAt).toISOString()
  }
}
