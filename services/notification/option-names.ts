/** The options `[notification]` understands (apart from realm, username, password); kept free of imports so the options parser can use it. */
export const NOTIFICATION_OPTIONS = [
  'backend', 'redis_url', 'default_expiration', 'push_enabled', 'customhttp_url', 'max_subscriptions',
  'max_message_bytes', 'retry_attempts', 'retry_initial_ms', 'retry_max_ms', 'delivery_timeout_ms', 'callback_allow'
] as const
