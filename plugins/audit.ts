/**
 * The audit stream: JSON log lines marked `audit: true`. This plugin writes one per options reload
 * (applied or rejected); the gate marks its denial and throttle lines the same way. Who edited the
 * file cannot be known, so a reload line carries the options hash before and after and the
 * sections changed. Secrets never appear: the hash leaves them out, the lines carry no values.
 */
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { ReloadApplied, ReloadRejected } from './options-watch.js'

async function auditPlugin (fastify: FastifyInstance): Promise<void> {
  const watcher = fastify.gmsGate.watcher
  if (watcher === null) return
  const audit = fastify.log.child({ audit: true })
  let hash = fastify.gmsGate.current().options.hash
  watcher.on('reload', ({ loaded, changed, trigger }: ReloadApplied) => {
    const after = loaded.options.hash
    audit.info({ event: 'options-reload', file: watcher.file, hashBefore: hash, hashAfter: after, changed, trigger }, 'audit: options reloaded')
    hash = after
  })
  watcher.on('reload-error', ({ error, trigger }: ReloadRejected) => {
    audit.warn({ event: 'options-rejected', file: error.file, line: error.line, reason: error.reason, hashInForce: hash, trigger }, 'audit: options rejected, the last good options stay in force')
  })
}

/** Audit lines for options reloads (the gate writes those for denials and throttles). */
export const gmsAudit = fp(auditPlugin, { fastify: '5.x', name: 'gms-gate-audit', dependencies: ['gms-gate'] })
export default gmsAudit
