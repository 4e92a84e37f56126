/**
 * Prometheus metrics at `GET /metrics`, behind `[server]` credentials. One prom-client Registry per
 * app (several apps in one process never collide). The gate and the services count in plain
 * numbers; the values are read only when scraped, so the request path pays one increment.
 */
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { Counter, Gauge, Registry } from 'prom-client'
import { verifyCache } from './verify-cache.js'
import { hashLimit } from './hash-limit.js'
import { REDIS_COMMAND_TIMEOUT_MS } from '../services/redis-client.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** This app's metrics registry (add your own metrics to it). */
    gmsMetrics: Registry
  }
}

const OUTCOMES = ['allowed', 'denied', 'throttled', 'open'] as const

/** `count` settled within `ms`: its value, or the reason it has none (the backend failed or was too slow). */
async function countWithin (count: Promise<number>, ms: number): Promise<{ value: number } | { failure: string }> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<{ failure: string }>(resolve => {
    timer = setTimeout(() => resolve({ failure: `no answer within ${ms} ms` }), ms)
  })
  try {
    return await Promise.race([
      count.then(value => ({ value }), (err: unknown) => ({ failure: err instanceof Error ? err.message : 'failed' })),
      late
    ])
  } finally {
    clearTimeout(timer)
  }
}

async function metricsPlugin (fastify: FastifyInstance): Promise<void> {
  const registry = new Registry()
  const gate = fastify.gmsGate
  /** A counter that the app keeps as a plain number, read when scraped. */
  const countFrom = (name: string, help: string, read: () => number): void => {
    registry.registerMetric(new Counter({ name, help, registers: [], collect () { this.reset(); this.inc(read()) } }))
  }

  registry.registerMetric(new Counter({
    name: 'gms_gate_requests_total',
    help: 'Requests decided by the gate, by section and outcome (section "none": a path no section protects)',
    labelNames: ['section', 'outcome'],
    registers: [],
    collect () {
      this.reset()
      for (const [section, counts] of gate.requestCounts) {
        for (const outcome of OUTCOMES) this.inc({ section, outcome }, counts[outcome])
      }
    }
  }))
  countFrom('gms_gate_verify_cache_hits_total', 'Password hash verifications answered from the verify cache (process-wide)', () => verifyCache.hitCount)
  countFrom('gms_gate_hash_checks_refused_total', 'Password hash checks refused with 503 because max_hash_checks were running and max_hash_queue waiting (process-wide)', () => hashLimit.refusedCount)
  registry.registerMetric(new Gauge({
    name: 'gms_gate_hash_checks',
    help: 'Password hash checks running and waiting now (process-wide)',
    labelNames: ['state'],
    registers: [],
    collect () {
      this.set({ state: 'running' }, hashLimit.running)
      this.set({ state: 'queued' }, hashLimit.queued)
    }
  }))
  countFrom('gms_gate_port_refused_total', 'Requests answered 404 because of the port they came in on ([port_restrictions], metrics_port)', () => gate.portRefusedCount)

  const reloads = new Counter({
    name: 'gms_gate_options_reloads_total',
    help: 'Options file reloads, by result (applied, rejected)',
    labelNames: ['result'],
    registers: [registry]
  })
  reloads.inc({ result: 'applied' }, 0)
  reloads.inc({ result: 'rejected' }, 0)
  const lastReload = new Gauge({
    name: 'gms_gate_options_loaded_timestamp_seconds',
    help: 'When the options in force were loaded (start or last applied reload), in seconds since the epoch',
    registers: [registry]
  })
  lastReload.setToCurrentTime()
  registry.registerMetric(new Gauge({
    name: 'gms_gate_options_info',
    help: 'The hash of the options in force (secrets excluded), as a label; the value is always 1',
    labelNames: ['hash'],
    registers: [],
    collect () {
      this.reset()
      this.set({ hash: gate.current().options.hash }, 1)
    }
  }))
  gate.watcher?.on('reload', () => {
    reloads.inc({ result: 'applied' })
    lastReload.setToCurrentTime()
  })
  gate.watcher?.on('reload-error', () => reloads.inc({ result: 'rejected' }))

  // A backend that fails or hangs at scrape time costs its gauge's sample, never the scrape: an absent
  // sample reads as "unknown" in Prometheus, where a kept last value would pass stale data as fresh.
  const log = fastify.log.child({ plugin: 'metrics' })
  const failing = new Set<string>()
  async function liveCount (metric: string, count: () => Promise<number>): Promise<number | undefined> {
    const outcome = await countWithin(count(), REDIS_COMMAND_TIMEOUT_MS)
    if ('value' in outcome) {
      failing.delete(metric)
      return outcome.value
    }
    // Once per outage, as the Redis client logs it; the reason is our own message, never a URL or an option.
    if (!failing.has(metric)) log.warn({ metric, reason: outcome.failure }, 'metric sample omitted: its backend did not answer')
    failing.add(metric)
    return undefined
  }

  if (fastify.hasDecorator('gmsStorage')) {
    registry.registerMetric(new Gauge({
      name: 'gms_storage_ids',
      help: 'Live storage ids: held by this instance (backend="memory"), or by the Redis every instance on it shares ' +
        '(backend="redis": cluster-wide, do not sum across instances); absent when the backend does not answer',
      labelNames: ['backend'],
      registers: [],
      async collect () {
        const store = fastify.gmsStorage.store()
        const count = await liveCount('gms_storage_ids', () => store.countLive())
        this.reset()
        if (count !== undefined) this.set({ backend: store.backend }, count)
      }
    }))
  }
  if (fastify.hasDecorator('gmsNotification')) {
    const notification = fastify.gmsNotification
    registry.registerMetric(new Gauge({
      name: 'gms_notification_subscriptions',
      help: 'Live subscriptions: held by this instance (backend="memory"), or by the Redis every instance on it shares ' +
        '(backend="redis": cluster-wide, do not sum across instances); absent when the backend does not answer',
      labelNames: ['backend'],
      registers: [],
      async collect () {
        const count = await liveCount('gms_notification_subscriptions', () => notification.subscriptionCount())
        this.reset()
        if (count !== undefined) this.set({ backend: notification.backend }, count)
      }
    }))
    countFrom('gms_notification_delivery_attempts_total', 'Callback requests sent by this instance (each retry counts)', () => notification.delivery.attemptCount)
    countFrom('gms_notification_delivery_failures_total', 'Callback requests by this instance that failed (each retry counts)', () => notification.delivery.failureCount)
  }

  fastify.decorate('gmsMetrics', registry)
  fastify.get('/metrics', { config: { gmsSection: 'server' } }, async (_request, reply) => {
    const body = await registry.metrics()
    return reply.type(registry.contentType).send(body)
  })
}

/** `GET /metrics` (Prometheus text) behind `[server]` credentials. Register after the services. */
export const gmsMetrics = fp(metricsPlugin, { fastify: '5.x', name: 'gms-gate-metrics', dependencies: ['gms-gate'] })
export default gmsMetrics
