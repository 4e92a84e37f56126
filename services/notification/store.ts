/**
 * The contract of a subscription backend (memory or Redis). Backend failures reject with
 * `BackendUnavailableError` (503), never hang.
 */
import type { Subscription, SubscriptionRequest } from './validate.js'

export interface SubscriptionStore {
  readonly backend: 'memory' | 'redis'
  /** Keep a new subscription; null when `max` live subscriptions already exist. */
  add (request: SubscriptionRequest, max: number): Promise<Subscription | null>
  /** A live subscription, or null when unknown or expired. */
  get (id: string): Promise<Subscription | null>
  /** Remove a subscription; false when it did not exist. */
  delete (id: string): Promise<boolean>
  /** Every live subscription whose filter matches `tag`. */
  matching (tag: string): Promise<Subscription[]>
  /** How many subscriptions are live now (expired ones are dropped first); for metrics, not for the request path. */
  countLive (): Promise<number>
  /** Release timers and connections. */
  close (): Promise<void>
}
