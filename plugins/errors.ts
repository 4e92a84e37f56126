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
/** A body that is not JSON where only JSON is accepted (GMS answers 415 too). */
export const UnsupportedMediaTypeError = createError('GMS_GATE_UNSUPPORTED_MEDIA_TYPE', '%s', 415)
/** A configured limit (such as `[notification] max_subscriptions`) is reached. */
export const LimitReachedError = createError('GMS_GATE_LIMIT_REACHED', '%s', 429)
