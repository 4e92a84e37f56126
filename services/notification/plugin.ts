/**
 * The Notification API (GMS 8.5) behind the `[notification]` policy: subscribe, unsubscribe,
 * publish, and SSE streams. The backend (memory or Redis) is chosen at start; every other
 * `[notification]` setting is read per request, so a reload applies to the next one.
 */
import { EventEmitter, once } from 'node:events'
import { randomUUID } from 'node:crypto'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { BadRequestError, LimitReachedError, NotFoundError, UnsupportedMediaTypeError } from '../../plugins/errors.js'
import { createRedisClient } from '../redis-client.js'
import { MemoryBus, RedisBus, type BusMessage, type EventBus } from './bus.js'
import { callbackRefusal, type HostLookup, systemLookup } from './callback-allow.js'
import { CallbackDelivery, type DeadLettered, type Delivered } from './delivery.js'
import { MemorySubscriptionStore } from './memory-store.js'
import { RedisSubscriptionStore } from './redis-store.js'
import type { NotificationSettings } from './settings.js'
import type { SubscriptionStore } from './store.js'
import { StreamHub } from './streams.js'
import { describeSubscription, parsePublishRequest, parseSubscriptionRequest, type PublishedEvent, type Subscription } from './validate.js'

/** Payload of the `dispatched` event: what this instance did with one published event. */
export interface Dispatched {
  readonly eventId: string
  readonly matched: number
  /** Callbacks this instance won the claim for and started delivering. */
  readonly claimed: number
  /** SSE frames written on this instance. */
  readonly streamed: number
}

/** What the plugin offers the app (and tests): its events and its parts. */
export interface NotificationHandle {
  readonly backend: 'memory' | 'redis'
  /** Emits `dispatched` (Dispatched), `delivered` (Delivered), `dead-letter` (DeadLettered). */
  readonly events: EventEmitter
  readonly delivery: CallbackDelivery
  readonly streams: StreamHub
  /**
   * Live subscriptions: this instance's with memory, every instance's with Redis (no scan: a sorted
   * set by expiry). Rejects with `BackendUnavailableError` when Redis cannot be reached.
   */
  subscriptionCount (): Promise<number>
}

export interface NotificationApiOptions {
  /** How callback host names are resolved (tests replace DNS). */
  lookup?: HostLookup
}

declare module 'fastify' {
  interface FastifyInstance {
    gmsNotification: NotificationHandle
  }
}

const PREFIX = '/genesys/1/notification'
const JSON_TYPE = /^application\/json\s*(;|$)/i
const idParams = {
  type: 'object',
  properties: { id: { type: 'string', minLength: 1, maxLength: 128 } },
  required: ['id']
} as const

async function notificationApi (fastify: FastifyInstance, opts: NotificationApiOptions): Promise<void> {
  const startSettings = fastify.gmsGate.current().notification
  const settingsNow = (): NotificationSettings => fastify.gmsGate.current().notification
  const settingsOf = (request: FastifyRequest): NotificationSettings => (request.gmsOptions ?? fastify.gmsGate.current()).notification
  const lookup = opts.lookup ?? systemLookup
  const log = fastify.log.child({ service: 'notification' })
  const events = new EventEmitter()
  const delivery = new CallbackDelivery(settingsNow, log, lookup)
  delivery.on('delivered', (d: Delivered) => events.emit('delivered', d))
  delivery.on('dead-letter', (d: DeadLettered) => events.emit('dead-letter', d))
  const streams = new StreamHub(log)

  let store: SubscriptionStore
  let bus: EventBus
  const onMessage = (message: BusMessage, matched?: Subscription[]): void => {
    if (message.kind === 'unsubscribe') streams.end(message.id)
    else dispatch(message.event, matched).catch((err: unknown) => log.warn({ eventId: message.event.id, err: String(err) }, 'notification not dispatched on this instance'))
  }
  if (startSettings.backend === 'redis') {
    const redis = createRedisClient(startSettings.redisUrl!, log)
    // Queue the SUBSCRIBE until connected, so a Redis that is down at start does not stop the app.
    const subscriber = createRedisClient(startSettings.redisUrl!, log, { enableOfflineQueue: true })
    const redisBus = new RedisBus(redis, subscriber, onMessage, log)
    store = new RedisSubscriptionStore(redis)
    bus = redisBus
    // Wait (bounded) for both connections, so the first requests do not meet a client still connecting.
    const started = Promise.all([redisBus.start(), redis.status === 'ready' ? undefined : once(redis, 'ready')])
    const timeout = new Promise<'timeout'>(resolve => setTimeout(() => resolve('timeout'), 2000).unref())
    const outcome = await Promise.race([started, timeout]).catch((err: unknown) => String(err))
    if (outcome === 'timeout' || typeof outcome === 'string') {
      log.warn({ reason: outcome }, 'notification backend not reachable yet: requests answer 503 until it is')
    }
    fastify.addHook('onClose', async () => {
      await bus.close()
      redis.disconnect()
    })
  } else {
    store = new MemorySubscriptionStore()
    bus = new MemoryBus(onMessage)
  }

  /** Deliver one event to the subscriptions this instance is responsible for. */
  async function dispatch (event: PublishedEvent, known?: Subscription[]): Promise<void> {
    const publishedAt = Date.now()
    const matched = known ?? await store.matching(event.tag)
    let claimed = 0
    let streamed = 0
    await Promise.all(matched.map(async sub => {
      if (sub.type === 'sse') {
        streamed += streams.send(sub.id, event)
        return
      }
      let won: boolean
      try {
        won = await bus.claim(event.id, sub.id)
      } catch (err) {
        log.warn({ eventId: event.id, subscriptionId: sub.id, err: String(err) }, 'notification not delivered: the claim could not be made')
        return
      }
      if (!won) return
      claimed++
      delivery.deliver(sub, event, publishedAt)
    }))
    events.emit('dispatched', { eventId: event.id, matched: matched.length, claimed, streamed } satisfies Dispatched)
  }

  const subscriptionCount = (): Promise<number> => store.countLive()
  fastify.decorate('gmsNotification', { backend: store.backend, events, delivery, streams, subscriptionCount } satisfies NotificationHandle)
  fastify.addHook('preClose', async () => {
    streams.close()
    delivery.close()
  })
  fastify.addHook('onClose', async () => { await store.close() })

  await fastify.register(async function routes (api) {
    // JSON only, as GMS: checked after the gate, so an unauthenticated body is never looked at.
    api.addHook('preParsing', async (request) => {
      if (request.method !== 'POST') return
      const type = request.headers['content-type']
      if (type === undefined || !JSON_TYPE.test(type)) {
        throw new UnsupportedMediaTypeError(`Content-Type must be application/json, got ${type === undefined ? 'none' : JSON.stringify(type.slice(0, 100))}`)
      }
    })

    api.post(`${PREFIX}/subscription`, { config: { gmsSection: 'notification' } }, async (request) => {
      const settings = settingsOf(request)
      const wanted = parseSubscriptionRequest(request.body, settings)
      if (wanted.type === 'httpcb') {
        const refused = await callbackRefusal(new URL(wanted.deviceId!), settings.callbackAllow, lookup)
        if (refused !== null) throw new BadRequestError(`notificationDetails.deviceId refused: ${refused}`)
      }
      const sub = await store.add(wanted, settings.maxSubscriptions)
      if (sub === null) throw new LimitReachedError(`[notification] max_subscriptions (${settings.maxSubscriptions}) is reached`)
      log.debug({ subscriptionId: sub.id, subscriberId: sub.subscriberId, filter: sub.filter, type: sub.type }, 'subscribed')
      return { id: sub.id }
    })

    api.get(`${PREFIX}/subscription/:id`, { schema: { params: idParams }, config: { gmsSection: 'notification' } }, async (request) => {
      const { id } = request.params as { id: string }
      const sub = await store.get(id)
      if (sub === null) throw new NotFoundError(`subscription ${id} does not exist or has expired`)
      return describeSubscription(sub)
    })

    api.delete(`${PREFIX}/subscription/:id`, { schema: { params: idParams }, config: { gmsSection: 'notification' } }, async (request, reply) => {
      const { id } = request.params as { id: string }
      if (!await store.delete(id)) throw new NotFoundError(`subscription ${id} does not exist or has expired`)
      await bus.publish({ kind: 'unsubscribe', id }).catch(() => streams.end(id))
      reply.code(204)
    })

    api.post(`${PREFIX}/publish`, { config: { gmsSection: 'notification' } }, async (request) => {
      const settings = settingsOf(request)
      const wanted = parsePublishRequest(request.body, settings)
      const event: PublishedEvent = {
        id: randomUUID(),
        tag: wanted.tag,
        message: wanted.message,
        ...(wanted.mediaType !== undefined && { mediaType: wanted.mediaType }),
        ...(wanted.expire !== undefined && { expiresAt: Date.now() + wanted.expire * 1000 })
      }
      const matched = await store.matching(event.tag)
      await bus.publish({ kind: 'event', event }, matched)
      return { id: event.id, matched: matched.length }
    })

    api.get(`${PREFIX}/stream/:id`, { schema: { params: idParams }, config: { gmsSection: 'notification' } }, async (request, reply) => {
      const { id } = request.params as { id: string }
      const sub = await store.get(id)
      if (sub === null) throw new NotFoundError(`subscription ${id} does not exist or has expired`)
      if (sub.type !== 'sse') throw new BadRequestError(`subscription ${id} has notificationDetails.type "${sub.type}"; only "sse" subscriptions have a stream`)
      reply.hijack()
      streams.open(id, reply.raw, sub.expiresAt)
    })
  })
}

export const notificationPlugin = fp(notificationApi, { fastify: '5.x', name: 'gms-notification-api', dependencies: ['gms-gate'] })
export default notificationPlugin
