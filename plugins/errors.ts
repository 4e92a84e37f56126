/**
 * Coded runtime errors, handed to Fastify's error handler (each carries its status code).
 * Add new ones here so every code is in one place.
 */
import createError from '@fastify/error'

/** A backend (Redis) cannot be reached or timed out: 503, never a hang. */
export const BackendUnavailableError = createError('GMS_GATE_BACKEND_UNAVAILABLE', '%s is unavailable', 503)
/** A request body or parameter is invalid: 400 naming the field. */
export const BadRequestError = createError('GMS_GATE_BAD_REQUEST', '%s', 400)
/** An id or key that does not exist (or expired). */
export const NotFoundError = createError('GMS_GATE_NOT_FOUND', '%s', 404)
/** A service's upstream refused the connection or broke it (`_type = http`). */
export const UpstreamUnavailableError = createError('GMS_GATE_UPSTREAM_UNAVAILABLE', 'the upstream of [service.%s] is unreachable (%s)', 502)
/** A service's upstream did not answer within `_timeout`. */
export const UpstreamTimeoutError = createError('GMS_GATE_UPSTREAM_TIMEOUT', 'the upstream of [service.%s] did not answer within %d ms', 504)
/** request-interaction found no free access number (and code) in its pool. */
export const AccessPoolExhaustedError = createError('GMS_GATE_ACCESS_POOL_EXHAUSTED', 'no free access number in the pool of [service.%s]', 503)
/** The method is not one the resource answers. */
export const MethodNotAllowedError = createError('GMS_GATE_METHOD_NOT_ALLOWED', '%s', 405)
/** Too many failed authentications from a client: 429, sent with Retry-After, before any hash is computed. */
export const ThrottledError = createError('GMS_GATE_THROTTLED', 'too many failed authentications from this client; retry in %s s', 429)
/** `[server] https_only = true` and the request came over plain HTTP: say so, rather than ask for a password. */
export const HttpsRequiredError = createError('GMS_GATE_HTTPS_REQUIRED', 'this server accepts credentials over HTTPS only (https_only = true); send the request to its https:// address', 403)
/** A request body, or one value in it, is over its configured limit: 413 naming the limit. */
export const PayloadTooLargeError = createError('GMS_GATE_PAYLOAD_TOO_LARGE', '%s', 413)
/** A bounded in-memory backend is full: 507 rather than grow without bound. */
export const StorageFullError = createError('GMS_GATE_STORAGE_FULL', 'storage is full (%s)', 507)
/** An id would hold more keys than `[storage] max_keys`. */
export const TooManyKeysError = createError('GMS_GATE_TOO_MANY_KEYS', 'too many keys: %d where max_keys is %d', 400)
/** A body that is not JSON where only JSON is accepted (GMS answers 415 too). */
export const UnsupportedMediaTypeError = createError('GMS_GATE_UNSUPPORTED_MEDIA_TYPE', '%s', 415)
/** A configured limit (such as `[notification] max_subscriptions`) is reached. */
export const LimitReachedError = createError('GMS_GATE_LIMIT_REACHED', '%s', 429)
/** Too many password hash checks running and waiting at once (`[server] max_hash_checks`, `max_hash_queue`): 503 with Retry-After. */
export const HashChecksBusyError = createError('GMS_GATE_HASH_CHECKS_BUSY', 'too many password checks in progress; retry in a second', 503)
