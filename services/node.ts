/**
 * The Node API (GMS 8.5): who this instance is and whether it is up. Behind the `[server]`
 * policy, except `/health`, which is always open and says nothing about the options.
 */
import { randomUUID } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { packageInfo } from '../plugins/package-info.js'
import { policyReport, policyReportSchema } from '../plugins/policy-report.js'

/** Route schema of `GET /genesys/1/node` (the benchmark's reference apps serve the same shape). */
export const nodeSchema = {
  response: {
    200: {
      type: 'object',
      properties: {
        id: { type: 'string' },
        version: { type: 'string' },
        uptime: { type: 'number' },
        startedAt: { type: 'string' },
        optionsHash: { type: 'string' }
      }
    }
  }
}

async function nodeApi (fastify: FastifyInstance): Promise<void> {
  const id = randomUUID()
  const startedAt = new Date().toISOString()

  fastify.get('/genesys/1/node', { schema: nodeSchema, config: { gmsSection: 'server' } }, async (request) => ({
    id,
    version: packageInfo.version,
    uptime: Math.round(process.uptime()),
    startedAt,
    optionsHash: (request.gmsOptions ?? fastify.gmsGate.current()).options.hash
  }))

  fastify.get('/genesys/1/admin/node/status', { config: { gmsSection: 'server' } }, async (_request, reply) => {
    reply.type('text/plain; charset=utf-8')
    return 'ONLINE'
  })

  // The snapshot the request started with, so the view matches the policy that let it in.
  fastify.get('/genesys/1/admin/options', { schema: { response: { 200: policyReportSchema } }, config: { gmsSection: 'server' } }, async (request) =>
    policyReport(request.gmsOptions ?? fastify.gmsGate.current()))

  fastify.get('/health', async () => ({ status: 'ok' }))
}

export default fp(nodeApi, { fastify: '5.x', name: 'gms-node-api', dependencies: ['gms-gate'] })
