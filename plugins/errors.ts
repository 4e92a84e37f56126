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
/** Too many failed authentications from a client: 429, sent with Retry-After, before any hash is computed. */
export const ThrottledError = createError('GMS_GATE_THROTTLED', 'too many failed authentications from this client; retry in %s s', 429)
/** `[server] https_only = true` and the request came over plain HTTP: say so, rather than ask for a password. */
export const HttpsRequiredError = createError('GMS_GATE_HTTPS_REQUIRED', 'this server accepts credentials over HTTPS only (https_only = true); send the request to its https:// address', 403)
