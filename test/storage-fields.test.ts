import t from 'tap'
import {
  attachmentDisposition, checkKey, fieldsFromObject, fileContentType, MAX_KEY_BYTES, parseTtl
} from '../services/storage/fields.js'
import { STORAGE_DEFAULTS } from '../services/storage/settings.js'

const settings = { ...STORAGE_DEFAULTS, maxKeys: 3, maxValueBytes: 8 }

t.test('a positive ttl is kept, fractions included', async t => {
  t.equal(parseTtl('3600', 86400), 3600)
  t.equal(parseTtl('0.5', 86400), 0.5)
  t.equal(parseTtl('+7', 86400), 7)
})

t.test('a ttl that is not a positive number falls back to 30 s', async t => {
  for (const raw of ['0', '-1', '-0.5', '', 'abc', '1e3', '0x10', 'Infinity', 'NaN', '1.', '.5', ' 5']) {
    t.equal(parseTtl(raw, 86400), 30, JSON.stringify(raw))
  }
})

t.test('a ttl over max_ttl is a 400 naming the ttl', async t => {
  t.throws(() => parseTtl('86401', 86400), { statusCode: 400, message: 'ttl 86401 is over max_ttl (86400 s)' })
  t.equal(parseTtl('86400', 86400), 86400)
})

t.test('keys: empty, too long, with control characters or reserved names are 400s', async t => {
  t.throws(() => checkKey(''), { statusCode: 400, message: 'a key is empty' })
  t.throws(() => checkKey('k'.repeat(MAX_KEY_BYTES + 1)), { statusCode: 400, message: /longer than 256 bytes/ })
  t.throws(() => checkKey('é'.repeat(129)), { statusCode: 400, message: /longer than 256 bytes/ }, 'counted in bytes')
  t.throws(() => checkKey('a\nb'), { statusCode: 400, message: /control character/ })
  for (const reserved of ['__proto__', 'constructor', 'hasOwnProperty']) {
    t.throws(() => checkKey(reserved), { statusCode: 400, message: /is reserved/ })
  }
  t.doesNotThrow(() => checkKey('k'.repeat(MAX_KEY_BYTES)))
  t.doesNotThrow(() => checkKey('a b/ç?#'))
})

t.test('a form or JSON object becomes text values', async t => {
  const data = fieldsFromObject({ a: 'x', n: 12, b: false }, settings)
  t.same({ ...data }, { a: { type: 'text', value: 'x' }, n: { type: 'text', value: '12' }, b: { type: 'text', value: 'false' } })
  t.same({ ...fieldsFromObject(undefined, settings) }, {})
})

t.test('a body that is not an object of plain values is a 400 naming the key', async t => {
  t.throws(() => fieldsFromObject([1], settings), { statusCode: 400, message: /must be a form/ })
  t.throws(() => fieldsFromObject('text', settings), { statusCode: 400, message: /must be a form/ })
  t.throws(() => fieldsFromObject({ a: ['1', '2'] }, settings), { statusCode: 400, message: 'key "a" is given more than once' })
  t.throws(() => fieldsFromObject({ a: { b: 1 } }, settings), { statusCode: 400, message: /key "a" must be a string/ })
  t.throws(() => fieldsFromObject({ a: null }, settings), { statusCode: 400, message: /key "a"/ })
})

t.test('limits: too many keys is a 400, a value over max_value_bytes a 413 naming its key', async t => {
  t.throws(() => fieldsFromObject({ a: '1', b: '1', c: '1', d: '1' }, settings), { statusCode: 400, code: 'GMS_GATE_TOO_MANY_KEYS' })
  t.throws(() => fieldsFromObject({ big: '123456789' }, settings), { statusCode: 413, message: /key "big" is over max_value_bytes \(8\)/ })
  t.throws(() => fieldsFromObject({ big: 'ééééé' }, settings), { statusCode: 413, message: /key "big"/ }, 'counted in bytes')
  t.doesNotThrow(() => fieldsFromObject({ fits: '12345678' }, settings))
})

t.test('a file keeps a well-formed content type, parameters included; anything else is octet-stream', async t => {
  t.equal(fileContentType('image/png'), 'image/png')
  t.equal(fileContentType('text/plain; charset=utf-8'), 'text/plain; charset=utf-8')
  t.equal(fileContentType(undefined), 'application/octet-stream')
  t.equal(fileContentType('not a type'), 'application/octet-stream')
  t.equal(fileContentType('text/html\r\nx: y'), 'application/octet-stream')
})

t.test('a file is served as an attachment named per RFC 6266', async t => {
  t.equal(attachmentDisposition('report.pdf'), "attachment; filename*=UTF-8''report.pdf")
  t.equal(attachmentDisposition('é "q" (1)*\'.txt'), "attachment; filename*=UTF-8''%C3%A9%20%22q%22%20%281%29%2A%27.txt")
  t.equal(attachmentDisposition(''), 'attachment')
})
