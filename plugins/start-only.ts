/**
 * Options read once, at start: they shape the listening sockets, the server itself or a store opened
 * for the whole run, so a reload cannot apply them. One list, checked by the options watcher on
 * every reload, so each says "restart needed" the same way. Pure.
 */
import type { LoadedOptions } from './options-watch.js'

/** One option (or a group read together) that only a restart applies. */
export interface StartOnlyOption {
  /** As an operator finds it in the file: `[server] trust_proxy`. */
  readonly option: string
  /** What keeps running as it started until the restart. */
  readonly effect: string
  same (a: LoadedOptions, b: LoadedOptions): boolean
}

/** The same store: the same backend and, for Redis, the same address (a redis_url under memory is unused). */
function sameStore (backend: string, url: string | undefined, otherBackend: string, otherUrl: string | undefined): boolean {
  return backend === otherBackend && (backend !== 'redis' || url === otherUrl)
}

export const START_ONLY_OPTIONS: readonly StartOnlyOption[] = [
  {
    option: '[server] host, port, ports, metrics_port',
    effect: 'gms-gate keeps listening where it started',
    same: (a, b) => {
      const x = a.options.listen
      const y = b.options.listen
      return x.host === y.host && x.ports.join() === y.ports.join() && x.metricsPort === y.metricsPort
    }
  },
  {
    option: '[server] trust_proxy',
    effect: 'client addresses are read as at start',
    same: (a, b) => a.security.trustProxy === b.security.trustProxy
  },
  {
    option: '[server] throttle_store, redis_url',
    effect: 'failure counters stay where they started',
    same: (a, b) => sameStore(a.security.throttleStore, a.security.redisUrl, b.security.throttleStore, b.security.redisUrl)
  },
  {
    option: '[server] tls_cert, tls_key (on or off)',
    effect: 'the server keeps the protocol it started with (a new certificate path is followed at once)',
    same: (a, b) => (a.security.tls === null) === (b.security.tls === null)
  },
  {
    option: '[notification] backend, redis_url',
    effect: 'subscriptions stay where they started',
    same: (a, b) => sameStore(a.notification.backend, a.notification.redisUrl, b.notification.backend, b.notification.redisUrl)
  },
  {
    option: '[storage] backend, redis_url (for the Service API)',
    effect: 'the Storage API switches now, but Service API reservations and instances stay where they started',
    same: (a, b) => sameStore(a.storage.backend, a.storage.redisUrl, b.storage.backend, b.storage.redisUrl)
  }
]

/**
 * The start-only options that `next` sets differently from what runs (`start`), and that the
 * previous version did not already change (so one edit is reported once, not on every reload after).
 */
export function startOnlyChanges (start: LoadedOptions, previous: LoadedOptions, next: LoadedOptions): StartOnlyOption[] {
  return START_ONLY_OPTIONS.filter(o => !o.same(start, next) && !o.same(previous, next))
}
