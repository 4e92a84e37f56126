/**
 * Callback delivery (`httpcb`, `customhttp`) in the background: each (event, subscription) is its
 * own task with a timeout per attempt, bounded retries with exponential backoff and a dead-letter
 * warning after the last, so a slow or dead subscriber never holds up publishing or the others.
 */
import { EventEmitter } from 'node:events'
import { Agent, request } from 'undici'
import { callbackRefusal, type HostLookup, systemLookup } from './callback-allow.js'
import type { NotificationSettings, RetryPolicy } from './settings.js'
import type { PublishedEvent, Subscription } from './validate.js'

/** Payload of the `delivered` event. */
export interface Delivered {
  readonly eventId: string
  readonly subscriptionId: string
  readonly attempts: number
  /** From publish to the 200, in ms. */
  readonly latencyMs: number
}

/** Payload of the `dead-letter` event. */
export interface DeadLettered {
  readonly eventId: string
  readonly subscriptionId: string
  readonly attempts: number
  readonly reason: string
}

export interface DeliveryLogger {
  warn (obj: object, msg: string): void
  debug (obj: object, msg: string): void
}

/** Wait before attempt `n + 1` after `n` failures: doubling from `initialMs`, capped at `maxMs`. */
export function backoffMs (failures: number, retry: RetryPolicy): number {
  return Math.min(retry.initialMs * 2 ** (failures - 1), retry.maxMs)
}

/** Where a delivery goes, for logs: no query string, no credentials. */
function logTarget (url: string): string {
  try {
    const u = new URL(url)
    return `${u.origin}${u.pathname}`
  } catch {
    return '(invalid url)'
  }
}

interface Attempt { readonly url: string, readonly headers: Record<string, string>, readonly body: string }

/** Connections kept per callback origin: beyond it requests queue for that origin only, so one slow host holds up no other. */
export const CONNECTIONS_PER_ORIGIN = 32

/**
 * Sends callbacks. Emits `delivered` (Delivered) and `dead-letter` (DeadLettered), so tests and
 * the throughput script await events, not time.
 */
export class CallbackDelivery extends EventEmitter {
  readonly #settings: () => NotificationSettings
  readonly #log: DeliveryLogger
  readonly #lookup: HostLookup
  readonly #closing = new AbortController()
  readonly #agent = new Agent({ connections: CONNECTIONS_PER_ORIGIN })
  /** Pending retry waits: ended at once on close. */
  readonly #waits = new Map<NodeJS.Timeout, () => void>()
  #inFlight = 0
  #attempts = 0
  #failures = 0

  constructor (settings: () => NotificationSettings, log: DeliveryLogger, lookup: HostLookup = systemLookup) {
    super()
    this.#settings = settings
    this.#log = log
    this.#lookup = lookup
  }

  /** Callback requests sent since start (retries included), for metrics. */
  get attemptCount (): number {
    return this.#attempts
  }

  /** Callback requests that failed since start (each retry counts), for metrics. */
  get failureCount (): number {
    return this.#failures
  }

  /** Deliveries started and not finished (attempting or waiting to retry). */
  get inFlight (): number {
    return this.#inFlight
  }

  /** Start delivering `event` to `sub` in the background. `publishedAt` (epoch ms) dates the latency. */
  deliver (sub: Subscription, event: PublishedEvent, publishedAt = Date.now()): void {
    this.#inFlight++
    this.#run(sub, event, publishedAt).finally(() => { this.#inFlight-- })
  }

  async #run (sub: Subscription, event: PublishedEvent, publishedAt: number): Promise<void> {
    let failures = 0
    let reason = ''
    for (;;) {
      const settings = this.#settings()
      const attempt = await this.#prepare(sub, event, settings)
      if (typeof attempt === 'string') return this.#deadLetter(sub, event, failures, attempt)
      this.#attempts++
      reason = await this.#attempt(attempt, settings.retry.timeoutMs)
      if (this.#closing.signal.aborted) return
      if (reason !== '') this.#failures++
      if (reason === '') {
        const delivered: Delivered = { eventId: event.id, subscriptionId: sub.id, attempts: failures + 1, latencyMs: Date.now() - publishedAt }
        this.emit('delivered', delivered)
        return
      }
      failures++
      if (failures >= settings.retry.attempts) return this.#deadLetter(sub, event, failures, reason)
      const wait = backoffMs(failures, settings.retry)
      if (event.expiresAt !== undefined && Date.now() + wait >= event.expiresAt) {
        return this.#deadLetter(sub, event, failures, `${reason}; the event expires before the next attempt`)
      }
      this.#log.debug({ subscriptionId: sub.id, eventId: event.id, attempt: failures, retryInMs: wait, reason }, 'notification delivery failed, will retry')
      await new Promise<void>(resolve => {
        const timer = setTimeout(() => { this.#waits.delete(timer); resolve() }, wait)
        this.#waits.set(timer, resolve)
      })
      if (this.#closing.signal.aborted) return
    }
  }

  /** The request to send, or why there is none. */
  async #prepare (sub: Subscription, event: PublishedEvent, settings: NotificationSettings): Promise<Attempt | string> {
    const headers: Record<string, string> = {}
    if (sub.authorization !== undefined) headers.authorization = `Basic ${sub.authorization}`
    if (sub.type === 'httpcb') {
      // The allow-list is checked again: a reload may have narrowed it, a host may now resolve elsewhere.
      const refused = await callbackRefusal(new URL(sub.deviceId!), settings.callbackAllow, this.#lookup)
      if (refused !== null) return `callback refused: ${refused}`
      headers['content-type'] = event.mediaType ?? 'text/plain; charset=utf-8'
      return { url: sub.deviceId!, headers, body: event.message }
    }
    if (settings.customhttpUrl === undefined) return 'customhttp_url is no longer set'
    headers['content-type'] = 'application/json'
    return { url: settings.customhttpUrl, headers, body: JSON.stringify({ deviceId: sub.deviceId, message: event.message }) }
  }

  /** One POST; resolves to '' on a 200, else why it failed. */
  async #attempt ({ url, headers, body }: Attempt, timeoutMs: number): Promise<string> {
    try {
      // undici does not follow redirects unless asked: a redirect (past the allow-list) is a failure like any non-200.
      const response = await request(url, {
        method: 'POST',
        headers,
        body,
        dispatcher: this.#agent,
        signal: AbortSignal.any([AbortSignal.timeout(timeoutMs), this.#closing.signal])
      })
      await response.body.dump()
      return response.statusCode === 200 ? '' : `HTTP ${response.statusCode}`
    } catch (err) {
      const e = err as Error & { code?: string }
      if (e.name === 'TimeoutError') return `no answer within ${timeoutMs} ms`
      return e.code ?? e.message
    }
  }

  #deadLetter (sub: Subscription, event: PublishedEvent, attempts: number, reason: string): void {
    const target = sub.type === 'httpcb' ? logTarget(sub.deviceId!) : logTarget(this.#settings().customhttpUrl ?? '')
    this.#log.warn({ subscriptionId: sub.id, subscriberId: sub.subscriberId, eventId: event.id, tag: event.tag, type: sub.type, target, attempts, reason },
      'notification dead-lettered: delivery given up')
    const dead: DeadLettered = { eventId: event.id, subscriptionId: sub.id, attempts, reason }
    this.emit('dead-letter', dead)
  }

  /** Abort every attempt and pending retry. */
  close (): void {
    this.#closing.abort()
    this.#agent.destroy().catch(() => {})
    for (const [timer, resolve] of this.#waits) {
      clearTimeout(timer)
      resolve()
    }
    this.#waits.clear()
  }
}
