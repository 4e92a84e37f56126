/**
 * The Storage API (GMS 8.5 `/genesys/1/storage`) behind the `[storage]` policy: keep keys and
 * values (text or files) under a random id for a ttl, in memory or in Redis. Decorates the app with
 * `gmsStorage`, the store in force, which the Service API keeps its user data in.
 */
import { Transform, type Readable, type TransformCallback } from 'node:stream'
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteShorthandOptions } from 'fastify'
import fp from 'fastify-plugin'
import formbody from '@fastify/formbody'
import multipart from '@fastify/multipart'
import { BadRequestError, NotFoundError, PayloadTooLargeError, TooManyKeysError } from '../../plugins/errors.js'
import { ActiveStore, type StorageHandle } from './active-store.js'
import {
  attachmentDisposition, checkKey, checkValueSize, fieldsFromObject, fileContentType, MAX_KEY_BYTES, parseTtl
} from './fields.js'
import { BODY_BYTES_CEILING, type StorageSettings } from './settings.js'
import { isStorageId, type StoredData, type StoredValue } from './store.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The storage in force (memory or Redis, following `[storage] backend` across reloads). */
    gmsStorage: StorageHandle
  }
}

export interface StorageApiOptions {
  /** Clock of the memory backend, in ms (tests move time instead of waiting). */
  now?: () => number
  /** How often the memory backend sweeps expired ids, in ms (default 5000). */
  sweepIntervalMs?: number
}

const PREFIX = '/genesys/1/storage'

interface TtlParams { ttl: string }
interface IdParams { id: string }
interface IdTtlParams { id: string, ttl: string }
interface IdKeyParams { id: string, key: string }

const idReply = {
  response: { 200: { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] } }
}

function settingsOf (request: FastifyRequest): StorageSettings {
  return request.gmsOptions!.storage
}

function unknownId (id: string): Error {
  return new NotFoundError(`storage id ${JSON.stringify(id)} is unknown or expired`)
}

function unknownKey (id: string, key: string): Error {
  return new NotFoundError(`key ${JSON.stringify(key)} of storage id ${JSON.stringify(id)} is unknown or expired`)
}

/** Counts the bytes of a URL-encoded or JSON body as they arrive and stops at `max_body_bytes`. */
function limitedBody (payload: Readable, max: number): Transform {
  let seen = 0
  const limited = new Transform({
    transform (chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
      seen += chunk.length
      if (seen > max) callback(new PayloadTooLargeError(`the body is over max_body_bytes (${max})`))
      else callback(null, chunk)
    }
  })
  payload.on('error', err => limited.destroy(err))
  return payload.pipe(limited)
}

/** The keys and values of a multipart form: text fields, and files kept as bytes with their content type. */
async function multipartFields (request: FastifyRequest, settings: StorageSettings): Promise<Record<string, StoredValue>> {
  const data: Record<string, StoredValue> = Object.create(null)
  let total = 0
  const parts = request.parts({
    limits: {
      // One part past max_keys and busboy stops: FST_PARTS_LIMIT, a 400 below.
      parts: settings.maxKeys,
      fieldNameSize: MAX_KEY_BYTES + 1,
      fieldSize: settings.maxValueBytes,
      fileSize: settings.maxValueBytes
    }
  })
  try {
    for await (const part of parts) {
      const key = part.fieldname
      checkKey(key)
      if (key in data) throw new BadRequestError(`key ${JSON.stringify(key)} is given more than once`)
      let value: StoredValue
      if (part.type === 'file') {
        const bytes = await part.toBuffer()
        value = { type: 'file', data: bytes, contentType: fileContentType(part.mimetype), filename: part.filename ?? '' }
        total += bytes.length
      } else {
        // busboy cuts a field at fieldSize and says so: past max_value_bytes.
        if (part.valueTruncated) checkValueSize(key, settings.maxValueBytes + 1, settings)
        const text = typeof part.value === 'string' ? part.value : JSON.stringify(part.value)
        value = { type: 'text', value: text }
        total += Buffer.byteLength(text)
      }
      if (total > settings.maxBodyBytes) throw new PayloadTooLargeError(`the body is over max_body_bytes (${settings.maxBodyBytes})`)
      data[key] = value
    }
  } catch (err) {
    throw multipartError(err, settings)
  }
  return data
}

/** Name what a multipart failure means to the caller; whatever busboy could not parse is a 400. */
function multipartError (err: unknown, settings: StorageSettings): Error {
  const e = err as Error & { code?: string, statusCode?: number, part?: { fieldname?: string } }
  switch (e.code) {
    case 'FST_REQ_FILE_TOO_LARGE':
      return new PayloadTooLargeError(`the value of key ${JSON.stringify(e.part?.fieldname ?? '')} is over max_value_bytes (${settings.maxValueBytes})`)
    case 'FST_PARTS_LIMIT': case 'FST_FILES_LIMIT': case 'FST_FIELDS_LIMIT':
      return new TooManyKeysError(settings.maxKeys + 1, settings.maxKeys)
    case 'FST_PROTO_VIOLATION':
      return new BadRequestError('a key of the form is reserved (a name of Object.prototype)')
    case 'FST_INVALID_JSON_FIELD_ERROR':
      return new BadRequestError('a form field declared as application/json is not valid JSON')
  }
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) return e
  return new BadRequestError(`malformed multipart body: ${e.message}`)
}

async function bodyFields (request: FastifyRequest, settings: StorageSettings): Promise<Record<string, StoredValue>> {
  return request.isMultipart() ? await multipartFields(request, settings) : fieldsFromObject(request.body, settings)
}

/** A stored value as JSON in `GET /storage/<id>`: text as itself, a file by its description (its bytes at `/<id>/<key>`). */
function describe (value: StoredValue): unknown {
  if (value.type === 'text') return value.value
  return { filename: value.filename, contentType: value.contentType, size: value.data.length }
}

async function storageRoutes (routes: FastifyInstance): Promise<void> {
  const store = routes.gmsStorage
  // Encapsulated here: these parsers serve the Storage API only.
  routes.removeContentTypeParser('text/plain')
  await routes.register(formbody)
  await routes.register(multipart, { throwFileSizeLimit: true })

  const withBody: RouteShorthandOptions = {
    config: { gmsSection: 'storage' },
    schema: idReply,
    // The limit in force is `max_body_bytes` (hot-reloaded); the route's own limit only caps it.
    bodyLimit: BODY_BYTES_CEILING,
    preParsing: async (request, _reply, payload) => {
      const max = settingsOf(request).maxBodyBytes
      if (Number(request.headers['content-length']) > max) throw new PayloadTooLargeError(`the body is over max_body_bytes (${max})`)
      // Multipart is read by busboy from the raw request, part by part, and counted there.
      if (request.headers['content-type']?.toLowerCase().startsWith('multipart/') === true) return payload
      return limitedBody(payload, max)
    }
  }
  const withoutBody: RouteShorthandOptions = { config: { gmsSection: 'storage' } }

  routes.post<{ Params: TtlParams }>(`${PREFIX}/:ttl`, withBody, async (request) => {
    const settings = settingsOf(request)
    const ttl = parseTtl(request.params.ttl, settings.maxTtlSeconds)
    const data = await bodyFields(request, settings)
    if (Object.keys(data).length === 0) {
      throw new BadRequestError('the body holds no key: send a form (URL-encoded or multipart) or a JSON object')
    }
    return { id: await store.create(data, ttl) }
  })

  routes.post<{ Params: IdTtlParams }>(`${PREFIX}/:id/:ttl`, withBody, async (request) => {
    const settings = settingsOf(request)
    const { id } = request.params
    const ttl = parseTtl(request.params.ttl, settings.maxTtlSeconds)
    const data: StoredData = await bodyFields(request, settings)
    if (!isStorageId(id) || !await store.update(id, data, ttl, { maxKeys: settings.maxKeys })) throw unknownId(id)
    return { id }
  })

  routes.get<{ Params: IdParams }>(`${PREFIX}/:id`, withoutBody, async (request) => {
    const { id } = request.params
    const data = isStorageId(id) ? await store.getAll(id) : null
    if (data === null) throw unknownId(id)
    return Object.fromEntries(Object.entries(data).map(([key, value]) => [key, describe(value)]))
  })

  routes.get<{ Params: IdKeyParams }>(`${PREFIX}/:id/:key`, withoutBody, async (request, reply: FastifyReply) => {
    const { id, key } = request.params
    const value = isStorageId(id) ? await store.get(id, key) : null
    if (value === null) throw unknownKey(id, key)
    if (value.type === 'text') return reply.type('text/plain; charset=utf-8').send(value.value)
    return reply
      .type(value.contentType)
      .header('content-disposition', attachmentDisposition(value.filename))
      .header('x-content-type-options', 'nosniff')
      .send(value.data)
  })

  routes.delete<{ Params: IdParams }>(`${PREFIX}/:id`, withoutBody, async (request, reply) => {
    const { id } = request.params
    if (!isStorageId(id) || !await store.delete(id)) throw unknownId(id)
    return reply.code(200).send()
  })

  routes.delete<{ Params: IdKeyParams }>(`${PREFIX}/:id/:key`, withoutBody, async (request, reply) => {
    const { id, key } = request.params
    if (!isStorageId(id) || !await store.deleteKey(id, key)) throw unknownKey(id, key)
    return reply.code(200).send()
  })
}

async function storageApi (fastify: FastifyInstance, opts: StorageApiOptions): Promise<void> {
  const active = new ActiveStore({
    settings: () => fastify.gmsGate.current().storage,
    log: fastify.log,
    now: opts.now,
    sweepIntervalMs: opts.sweepIntervalMs
  })
  fastify.decorate('gmsStorage', active satisfies StorageHandle)
  // Switch as soon as a reload changes the backend, so the old client is closed without waiting for a request.
  const follow = (): void => { active.store() }
  const watcher = fastify.gmsGate.watcher
  watcher?.on('reload', follow)
  fastify.addHook('onClose', async () => {
    watcher?.off('reload', follow)
    await active.close()
  })
  await fastify.register(storageRoutes)
}

/** The Storage API, and `fastify.gmsStorage` for the plugins registered after it. */
export const storageApiPlugin = fp(storageApi, { fastify: '5.x', name: 'gms-storage-api', dependencies: ['gms-gate'] })
export default storageApiPlugin
