/**
 * The Service API (GMS 8.5 `/genesys/1/service`): each `[service.<name>]` section is a service, served
 * by one parametric route family, so sections added or removed while the server runs apply on the
 * next request. Builtins request-interaction and match-interaction; `_type = http` forwards upstream.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import formbody from '@fastify/formbody'
import multipart from '@fastify/multipart'
import { sectionForService, type InstanceSectionLookup, type PolicyTable } from '../../plugins/policy.js'
import { AccessPoolExhaustedError, BadRequestError, MethodNotAllowedError, NotFoundError } from '../../plugins/errors.js'
import { createRedisClient, firstConnection } from '../redis-client.js'
import type { StorageStore, StoredData, StoredValue } from '../storage/store.js'
import { newInstanceId, reserveAccess, serviceOfInstance } from './access.js'
import { Forwarder } from './forward.js'
import { parseBoolean, type MatchInteractionService, type RequestInteractionService } from './settings.js'
import { MemoryStateStore, RedisStateStore, type ServiceStateStore } from './state-store.js'

export interface ServiceApiOptions {
  /** Where reservations and instances live; by default memory, or Redis when `[storage] backend = redis`. */
  state?: ServiceStateStore
  /** Where user data goes; by default the Storage API's store in force (`fastify.gmsStorage`). */
  storage?: StorageStore
}

interface ServiceParams { name: string, '*'?: string }

/** Sent with every field of a create request: `_`-prefixed ones drive the service, the rest is user data. */
type RequestFields = Map<string, StoredValue>

const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']

/** The protecting section is the router's decoded `:name`: a service, or the service an instance id names. */
function serviceSection (request: FastifyRequest, table: PolicyTable, lookup: InstanceSectionLookup | undefined) {
  return sectionForService((request.params as ServiceParams).name, table, lookup)
}

async function openState (fastify: FastifyInstance): Promise<ServiceStateStore> {
  const storage = fastify.gmsGate.current().storage
  if (storage.backend !== 'redis') return new MemoryStateStore()
  const client = createRedisClient(storage.redisUrl, fastify.log)
  // Start even if Redis is down (requests answer 503 until it is back), but give it a moment first.
  await firstConnection(client, 2000)
  return new RedisStateStore(client)
}

async function serviceApi (fastify: FastifyInstance, opts: ServiceApiOptions): Promise<void> {
  const state = opts.state ?? await openState(fastify)
  const storage = opts.storage ?? fastify.gmsStorage
  const forwarder = new Forwarder()
  fastify.gmsGate.setInstanceSectionLookup(serviceOfInstance)
  fastify.addHook('onClose', async () => {
    await forwarder.close()
    await state.close()
  })

  async function requestInteraction (service: RequestInteractionService, fields: RequestFields) {
    const phoneNumber = serviceParam(fields, '_phone_number')
    if (phoneNumber === undefined) throw new BadRequestError('_phone_number is mandatory for request-interaction')
    const provideCode = service.provideCode ?? booleanParam(fields, '_provide_code') ?? false
    const id = newInstanceId(service.name)
    const dataId = await storage.create(userData(fields), service.ttlSeconds)
    const grant = await reserveAccess(state, {
      numbers: service.accessNumbers,
      codeLength: provideCode ? service.accessCodeLength : 0,
      ttlMs: service.bookingSeconds * 1000,
      holder: { id, dataId, phoneNumber }
    })
    if (grant === null) {
      await storage.delete(dataId).catch(() => false)
      throw new AccessPoolExhaustedError(service.name)
    }
    try {
      await state.putInstance({ id, service: service.name, dataId, accessNumber: grant.number, accessCode: grant.code }, service.ttlSeconds * 1000)
    } catch (err) {
      // No instance, no reservation: give the number back rather than hold it until it expires.
      await state.release(grant.number, grant.code, id).catch(() => undefined)
      throw err
    }
    return {
      _id: id,
      _access_number: grant.number,
      ...(grant.code === '' ? {} : { _access_code: grant.code }),
      _expiration_time: service.bookingSeconds
    }
  }

  async function matchInteraction (_service: MatchInteractionService, fields: RequestFields) {
    const accessNumber = serviceParam(fields, '_access_number')
    if (accessNumber === undefined) throw new BadRequestError('_access_number is mandatory for match-interaction')
    const found = await state.take(accessNumber, serviceParam(fields, '_access_code') ?? '', serviceParam(fields, '_phone_number'))
    if (found === null) throw new NotFoundError('no live reservation matches _access_number, _access_code and _phone_number')
    return { _id: found.id, _data_id: found.dataId }
  }

  async function onInstance (id: string, subPath: string, request: FastifyRequest, reply: FastifyReply) {
    const loaded = request.gmsOptions!
    const creator = serviceOfInstance(id)
    const record = creator === undefined || !loaded.services.services.has(creator) ? null : await state.getInstance(id)
    // The record's service is checked too: the id alone decided which credentials were asked for.
    if (record === null || record.service !== creator) throw new NotFoundError(`no service or live instance named "${id}"`)
    if (subPath !== '') throw new NotFoundError(`[service.${creator}] has no request "${subPath}"`)
    if (request.method === 'GET') return { _id: record.id, _service: record.service, _data_id: record.dataId, _access_number: record.accessNumber, _access_code: record.accessCode === '' ? undefined : record.accessCode }
    if (request.method !== 'DELETE') throw new MethodNotAllowedError(`an instance answers GET and DELETE, not ${request.method}`)
    const deleted = await state.deleteInstance(id)
    if (deleted?.accessNumber !== undefined) await state.release(deleted.accessNumber, deleted.accessCode ?? '', id)
    reply.code(200)
    return ''
  }

  await fastify.register(async function serviceRoutes (routes) {
    // Encapsulated: these parsers serve the Service API only. When a plugin registered the same
    // parsers where this one inherits them (the Storage API wrapped with fastify-plugin), reuse them.
    if (!routes.hasContentTypeParser('application/x-www-form-urlencoded')) await routes.register(formbody)
    if (!routes.hasContentTypeParser('multipart/form-data')) {
      await routes.register(multipart, { limits: { fileSize: 10 * 1024 * 1024, files: 20, fields: 200 } })
    }

    // `_type = http` is forwarded before any body parser touches the stream.
    async function forwardHttp (request: FastifyRequest, reply: FastifyReply) {
      const params = request.params as ServiceParams
      const service = request.gmsOptions!.services.services.get(params.name)
      if (service?.type !== 'http') return
      await forwarder.forward(service, params['*'] ?? '', request, reply)
      return reply
    }

    async function handle (request: FastifyRequest, reply: FastifyReply) {
      const { name, '*': subPath = '' } = request.params as ServiceParams
      const service = request.gmsOptions!.services.services.get(name)
      if (service === undefined) return await onInstance(name, subPath, request, reply)
      if (subPath !== '') throw new NotFoundError(`[service.${name}] has no request "${subPath}"`)
      if (request.method !== 'POST') throw new MethodNotAllowedError(`use POST to create an instance of [service.${name}]`)
      const fields = await readFields(request)
      if (service.type === 'builtin' && service.service === 'request-interaction') return await requestInteraction(service, fields)
      if (service.type === 'builtin' && service.service === 'match-interaction') return await matchInteraction(service, fields)
      throw new NotFoundError(`[service.${name}] cannot be served`)
    }

    const config = { gmsSection: serviceSection }
    routes.route({ method: METHODS, url: '/genesys/1/service/:name', config, onRequest: forwardHttp, handler: handle })
    routes.route({ method: METHODS, url: '/genesys/1/service/:name/*', config, onRequest: forwardHttp, handler: handle })
  })
}

/** Every field of a create request, from a multipart form, a URL-encoded form or a JSON object. */
async function readFields (request: FastifyRequest): Promise<RequestFields> {
  const fields: RequestFields = new Map()
  if (request.isMultipart()) {
    for await (const part of request.parts()) {
      if (part.type === 'file') {
        fields.set(part.fieldname, { type: 'file', data: await part.toBuffer(), contentType: part.mimetype, filename: part.filename })
      } else {
        fields.set(part.fieldname, { type: 'text', value: String(part.value) })
      }
    }
    return fields
  }
  const body = request.body
  if (body === undefined || body === null || body === '') return fields
  if (typeof body !== 'object' || Array.isArray(body)) throw new BadRequestError('the body must be a form or a JSON object')
  for (const [key, value] of Object.entries(body as Record<string, unknown>)) {
    if (value === null || value === undefined) continue
    fields.set(key, { type: 'text', value: typeof value === 'string' ? value : JSON.stringify(value) })
  }
  return fields
}

/** A `_` parameter as text (a file sent under a service parameter's name is refused). */
function serviceParam (fields: RequestFields, name: string): string | undefined {
  const field = fields.get(name)
  if (field === undefined) return undefined
  if (field.type !== 'text') throw new BadRequestError(`${name} must be a text field, not a file`)
  const value = field.value.trim()
  return value === '' ? undefined : value
}

function booleanParam (fields: RequestFields, name: string): boolean | undefined {
  const raw = serviceParam(fields, name)
  if (raw === undefined) return undefined
  const value = parseBoolean(raw)
  if (value === undefined) throw new BadRequestError(`${name} must be true or false`)
  return value
}

/** The fields that are not service parameters: kept in Storage under the instance's `_data_id`. */
function userData (fields: RequestFields): StoredData {
  const data: Record<string, StoredValue> = {}
  for (const [key, value] of fields) if (!key.startsWith('_')) data[key] = value
  return data
}

/** The Service API behind the gate. */
export default fp(serviceApi, { fastify: '5.x', name: 'gms-service-api', dependencies: ['gms-gate', 'gms-storage-api'] })
