/**
 * How published events and unsubscriptions reach every instance: directly in memory, or through
 * Redis pub/sub. With Redis each instance sees every event and a SET NX claim per
 * (event, subscription) lets exactly one of them deliver each callback.
 */
import type { Redis } from 'ioredis'
import { KEY_PREFIX, redisCall } from './redis-store.js'
import type { PublishedEvent, Subscription } from './validate.js'

/** What travels between instances. */
export type BusMessage =
  | { readonly kind: 'event', readonly event: PublishedEvent }
  | { readonly kind: 'unsubscribe', readonly id: string }

export interface EventBus {
  /** Hand a message to every instance (this one included); `matched` spares a second lookup where the store is local. */
  publish (message: BusMessage, matched?: Subscription[]): Promise<void>
  /** Whether this instance is the one to deliver `eventId` to `subscriptionId`. */
  claim (eventId: string, subscriptionId: string): Promise<boolean>
  close (): Promise<void>
}

export type BusHandler = (message: BusMessage, matched?: Subscription[]) => void

/** One process: a publish is handled here, and every claim is won. */
export class MemoryBus implements EventBus {
  readonly #handler: BusHandler
  constructor (handler: BusHandler) {
    this.#handler = handler
  }

  async publish (message: BusMessage, matched?: Subscription[]): Promise<void> {
    this.#handler(message, matched)
  }

  async claim (): Promise<boolean> {
    return true
  }

  async close (): Promise<void> {}
}

export const CHANNEL = `${KEY_PREFIX}events`
/** How long a claim is kept: every instance reads a pub/sub message within moments, so a minute is ample. */
const CLAIM_TTL_S = 60

export interface BusLogger {
  warn (obj: object, msg: string): void
}

/** Redis pub/sub; `subscriber` is a connection of its own (a subscribed connection runs no other command). */
export class RedisBus implements EventBus {
  readonly #redis: Redis
  readonly #subscriber: Redis

  constructor (redis: Redis, subscriber: Redis, handler: BusHandler, log: BusLogger) {
    this.#redis = redis
    this.#subscriber = subscriber
    subscriber.on('message', (channel: string, text: string) => {
      if (channel !== CHANNEL) return
      let message: BusMessage
      try {
        message = JSON.parse(text) as BusMessage
      } catch {
        log.warn({ channel }, 'ignored a malformed message on the notification channel')
        return
      }
      handler(message)
    })
  }

  /** Subscribe to the channel; resolves once Redis confirmed (ioredis resubscribes after a reconnect). */
  async start (): Promise<void> {
    await this.#subscriber.subscribe(CHANNEL)
  }

  async publish (message: BusMessage): Promise<void> {
    await redisCall(() => this.#redis.publish(CHANNEL, JSON.stringify(message)))
  }

  async claim (eventId: string, subscriptionId: string): Promise<boolean> {
    const won = await this.#redis.set(`${KEY_PREFIX}claim:${eventId}:${subscriptionId}`, '1', 'EX', CLAIM_TTL_S, 'NX')
    return won === 'OK'
  }

  async close (): Promise<void> {
    this.#subscriber.disconnect()
  }
}
