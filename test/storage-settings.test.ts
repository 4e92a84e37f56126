import t from 'tap'
import { OptionsError, parseOptions } from '../plugins/options-file.js'
import { loadOptionsText } from '../plugins/options-watch.js'
import { BODY_BYTES_CEILING, compileStorageSettings, STORAGE_DEFAULTS } from '../services/storage/settings.js'

const compile = (ini: string) => compileStorageSettings(parseOptions(ini, 'test.ini'))

function errorOf (ini: string): OptionsError {
  try {
    compile(ini)
  } catch (err) {
    if (err instanceof OptionsError) return err
    throw err
  }
  throw new Error('expected an OptionsError')
}

t.test('without a [storage] section every setting is its default', async t => {
  t.same(compile('[server]\nport = 8080\n'), STORAGE_DEFAULTS)
  t.same(STORAGE_DEFAULTS, {
    backend: 'memory',
    redisUrl: 'redis://127.0.0.1:6379/0',
    maxTtlSeconds: 30 * 24 * 3600,
    maxValueBytes: 1024 * 1024,
    maxBodyBytes: 10 * 1024 * 1024,
    maxKeys: 100,
    maxEntries: 100_000,
    maxMemoryBytes: 256 * 1024 * 1024
  })
})

t.test('empty options in [storage] count as not set', async t => {
  t.same(compile('[storage]\nbackend =\nmax_ttl =\n'), STORAGE_DEFAULTS)
})

t.test('every option is read, and none is warned about as unknown', async t => {
  const ini = `[storage]
backend = redis
redis_url = rediss://:secret@cache.example:6380/2
max_ttl = 3600
max_value_bytes = 2048
max_body_bytes = 4096
max_keys = 7
max_entries = 50
max_memory_bytes = 999
`
  const options = parseOptions(ini, 'test.ini')
  t.same(options.warnings, [])
  t.same(compileStorageSettings(options), {
    backend: 'redis',
    redisUrl: 'rediss://:secret@cache.example:6380/2',
    maxTtlSeconds: 3600,
    maxValueBytes: 2048,
    maxBodyBytes: 4096,
    maxKeys: 7,
    maxEntries: 50,
    maxMemoryBytes: 999
  })
})

t.test('a redis URL without a database number is accepted', async t => {
  t.equal(compile('[storage]\nredis_url = redis://localhost:6379\n').redisUrl, 'redis://localhost:6379')
})

const BAD: Array<[string, string, RegExp]> = [
  ['backend = disk', 'backend', /backend in \[storage\] must be "memory" or "redis", got "disk"/],
  ['backend = Redis', 'backend', /must be "memory" or "redis"/],
  ['redis_url = http://127.0.0.1:6379', 'redis_url', /redis_url in \[storage\] must be a URL like redis:\/\/host:6379\/0/],
  ['redis_url = 127.0.0.1:6379', 'redis_url', /must be a URL/],
  ['redis_url = redis://', 'redis_url', /must be a URL/],
  ['redis_url = redis://127.0.0.1:6379/zero', 'redis_url', /database by its number only/],
  ['max_ttl = 0', 'max_ttl', /max_ttl in \[storage\] must be a whole number above 0, got "0"/],
  ['max_ttl = -5', 'max_ttl', /whole number above 0/],
  ['max_ttl = 1.5', 'max_ttl', /whole number above 0/],
  ['max_ttl = 30d', 'max_ttl', /whole number above 0/],
  ['max_value_bytes = 1e6', 'max_value_bytes', /whole number above 0/],
  ['max_keys = many', 'max_keys', /whole number above 0/],
  ['max_entries = 99999999999999999999', 'max_entries', /whole number above 0/],
  ['max_memory_bytes = 0', 'max_memory_bytes', /whole number above 0/],
  [`max_body_bytes = ${BODY_BYTES_CEILING + 1}`, 'max_body_bytes', /must be at most 1073741824 \(1 GiB\)/],
  ['max_body_bytes = 100\nmax_value_bytes = 200', 'max_body_bytes', /max_body_bytes \(100\) must be at least max_value_bytes \(200\)/]
]

for (const [lines, key, reason] of BAD) {
  t.test(`${lines.replace('\n', ', ')} is refused with the line of ${key}`, async t => {
    const err = errorOf(`[server]\nport = 8080\n[storage]\n${lines}\n`)
    t.equal(err.file, 'test.ini')
    t.equal(err.line, 4)
    t.match(err.reason, reason)
  })
}

t.test('a max_value_bytes over the default body limit names max_value_bytes', async t => {
  const err = errorOf('[storage]\nbackend = memory\nmax_value_bytes = 20000000\n')
  t.equal(err.line, 3)
  t.match(err.reason, /max_value_bytes in \[storage\] leaves no room/)
})

t.test('a bad redis_url is not quoted back: it may hold a password', async t => {
  const err = errorOf('[storage]\nredis_url = http://user:hunter2@host/0\n')
  t.notMatch(err.message, /hunter2/)
})

t.test('the loaded options carry the storage settings, and a bad one refuses the whole file', async t => {
  t.equal(loadOptionsText('[storage]\nmax_keys = 3\n').storage.maxKeys, 3)
  t.throws(() => loadOptionsText('[storage]\nmax_keys = 0\n'), { name: 'OptionsError', line: 2 })
})
