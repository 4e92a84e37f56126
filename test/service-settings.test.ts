import t from 'tap'
import type { Test } from 'tap'
import { OptionsError, parseOptions } from '../plugins/options-file.js'
import { compileServiceSettings } from '../services/service/settings.js'

const compile = (ini: string) => compileServiceSettings(parseOptions(ini, 'test.ini'))
/** The OptionsError compiling `ini` throws (fails the test when none). */
const errorOf = (t: Test, ini: string): OptionsError => {
  try {
    compile(ini)
  } catch (err) {
    t.type(err, OptionsError)
    return err as OptionsError
  }
  t.fail('expected an OptionsError')
  return new OptionsError('', -1, '')
}
const rejects = (t: Test, ini: string, line: number, reason: RegExp) => {
  t.match(errorOf(t, ini), { line, reason })
}

t.test('a request-interaction section compiles with GMS defaults', async t => {
  const s = compile('[service.ri]\n_type = builtin\n_service = request-interaction\n_access_number = 100, 101\n')
  t.match(s.services.get('ri'), {
    type: 'builtin',
    service: 'request-interaction',
    accessNumbers: ['100', '101'],
    provideCode: undefined,
    accessCodeLength: 6,
    bookingSeconds: 30,
    ttlSeconds: 30
  })
})

t.test('_resource_group takes its pool from the [resource.<group>] section', async t => {
  const s = compile('[resource.dnis]\n_access_number = 7,8\n[service.ri]\n_type = builtin\n_service = request-interaction\n_resource_group = dnis\n')
  t.match(s.services.get('ri'), { accessNumbers: ['7', '8'] })
})

t.test('an http service compiles its DFM credentials into headers', async t => {
  const s = compile('[dfm.ors]\nusername = gms\npassword = s3cret\nmaxage = 60\nmaxstale = 5\n[service.cb]\n_type = http\n_service = http://127.0.0.1:7000/cb/\n_upstream = ors\n_timeout = 0.5\n_user_header = X-User\n')
  t.match(s.services.get('cb'), {
    type: 'http',
    url: 'http://127.0.0.1:7000/cb',
    timeoutMs: 500,
    userHeader: 'x-user',
    upstream: { authorization: `Basic ${Buffer.from('gms:s3cret').toString('base64')}`, cacheControl: 'max-age=60, max-stale=5' }
  })
})

t.test('a missing _type is refused at the section header', async t => {
  rejects(t, '[server]\n[service.x]\n_service = match-interaction\n', 2, /_type is mandatory/)
})

t.test('an unknown _type is refused at its line', async t => {
  rejects(t, '[service.x]\n_type = ors\n_service = match-interaction\n', 2, /unknown _type "ors"/)
})

t.test('a missing _service is refused', async t => {
  rejects(t, '[service.x]\n_type = builtin\n', 1, /_service is mandatory/)
})

t.test('an unknown builtin is refused at the _service line', async t => {
  rejects(t, '[service.x]\n_type = builtin\n_service = callback\n', 3, /unknown builtin _service "callback"/)
})

t.test('an http _service that is not an http URL is refused', async t => {
  rejects(t, '[service.x]\n_type = http\n_service = ftp://host/x\n', 3, /http:\/\/ or https:\/\//)
  rejects(t, '[service.x]\n_type = http\n_service = not a url\n', 3, /absolute http/)
})

t.test('credentials in an upstream URL are refused without being quoted', async t => {
  const err = errorOf(t, '[service.x]\n_type = http\n_service = http://u:hunter2@host/x\n')
  t.equal(err.line, 3)
  t.notMatch(err.message, 'hunter2')
})

t.test('an _upstream with no [dfm] section is refused', async t => {
  rejects(t, '[service.x]\n_type = http\n_service = http://h/x\n_upstream = nowhere\n', 4, /unknown _upstream "nowhere"/)
})

t.test('a DFM password without a username is refused and its value never quoted', async t => {
  const err = errorOf(t, '[dfm.ors]\npassword = hunter2\n')
  t.equal(err.line, 2)
  t.notMatch(err.message, 'hunter2')
})

t.test('request-interaction without a pool is refused', async t => {
  rejects(t, '[service.ri]\n_type = builtin\n_service = request-interaction\n', 1, /needs a pool/)
})

t.test('an unknown _resource_group is refused', async t => {
  rejects(t, '[service.ri]\n_type = builtin\n_service = request-interaction\n_resource_group = g\n', 4, /\[resource.g\]/)
})

t.test('bad numbers are refused at their line', async t => {
  rejects(t, '[service.m]\n_type = builtin\n_service = match-interaction\n_ttl = -3\n', 4, /_ttl must be a positive number/)
  rejects(t, '[service.ri]\n_type = builtin\n_service = request-interaction\n_access_number = 1\n_access_code_length = 0\n', 5, /_access_code_length/)
  rejects(t, '[service.ri]\n_type = builtin\n_service = request-interaction\n_access_number = 1\n_provide_code = maybe\n', 5, /true or false/)
})

t.test('a reserved header cannot be the _user_header', async t => {
  rejects(t, '[service.x]\n_type = http\n_service = http://h/x\n_user_header = Authorization\n', 4, /may not be authorization/)
})
