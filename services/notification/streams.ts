/**
 * Server-Sent Events streams held by this instance, by subscription id. A stream that falls too
 * far behind is closed rather than buffered without bound.
 */
import { EventEmitter } from 'node:events'
import type { ServerResponse } from 'node:http'
import type { PublishedEvent } from './validate.js'

/** Bytes a stream may have waiting in its socket before it counts as a slow reader and is closed. */
export const MAX_STREAM_BACKLOG = 1024 * 1024
const HEARTBEAT_MS = 15_000

/** The `data:` of one SSE event (JSON on one line, so a multi-line message stays one event). */
export function formatEvent (event: PublishedEvent): string {
  const data = JSON.stringify({ tag: event.tag, message: event.message, ...(event.mediaType !== undefined && { mediaType: event.mediaType }) })
  return `id: ${event.id}\nevent: notification\ndata: ${data}\n\n`
}

export interface StreamLogger {
  warn (obj: object, msg: string): void
}

/** Emits `closed` (subscription id) when a stream goes, whoever ended it. */
export class StreamHub extends EventEmitter {
  readonly #streams = new Map<string, Set<ServerResponse>>()
  readonly #heartbeat: NodeJS.Timeout
  readonly #log: StreamLogger

  constructor (log: StreamLogger) {
    super()
    this.#log = log
    // A comment line now and then keeps proxies from closing an idle stream.
    this.#heartbeat = setInterval(() => {
      for (const set of this.#streams.values()) for (const res of set) res.write(': keep-alive\n\n')
    }, HEARTBEAT_MS).unref()
  }

  /** Streams open for a subscription on this instance. */
  count (subscriptionId: string): number {
    return this.#streams.get(subscriptionId)?.size ?? 0
  }

  /** Start an SSE response and keep it until the client leaves or `end(subscriptionId)`. */
  open (subscriptionId: string, res: ServerResponse, endAt: number): void {
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no'
    })
    res.write(': subscribed\n\n')
    let set = this.#streams.get(subscriptionId)
    if (set === undefined) this.#streams.set(subscriptionId, set = new Set())
    set.add(res)
    // The stream ends with its subscription.
    const expiry = setTimeout(() => res.end(), Math.max(0, endAt - Date.now())).unref()
    res.once('close', () => {
      clearTimeout(expiry)
      set.delete(res)
      if (set.size === 0 && this.#streams.get(subscriptionId) === set) this.#streams.delete(subscriptionId)
      this.emit('closed', subscriptionId)
    })
  }

  /** Write an event to every stream of a subscription; resolves how many got it. */
  send (subscriptionId: string, event: PublishedEvent): number {
    const set = this.#streams.get(subscriptionId)
    if (set === undefined) return 0
    const frame = formatEvent(event)
    let sent = 0
    for (const res of set) {
      if (res.writableLength > MAX_STREAM_BACKLOG) {
        this.#log.warn({ subscriptionId }, 'notification stream closed: the client reads too slowly')
        res.destroy()
        continue
      }
      res.write(frame)
      sent++
    }
    return sent
  }

  /** End every stream of a subscription (unsubscribed). */
  end (subscriptionId: string): void {
    for (const res of this.#streams.get(subscriptionId) ?? []) res.end()
  }

  close (): void {
    clearInterval(this.#heartbeat)
    for (const set of this.#streams.values()) for (const res of set) res.end()
  }
}
