import t from 'tap'
import { credentialsMatch, expectCredentials, parseBasicAuthorization } from '../plugins/credentials.js'

const b64 = (s: string | Buffer) => Buffer.from(s).toString('base64')

t.test('a well-formed Basic header yields user-id and password split at the first colon', async t => {
  t.same(parseBasicAuthorization(`Basic ${b64('user:pa:ss')}`), { username: 'user', password: 'pa:ss' })
})

t.test('the scheme is case-insensitive and may be followed by several spaces', async t => {
  t.same(parseBasicAuthorization(`bAsIc   ${b64('a:b')}`), { username: 'a', password: 'b' })
})

t.test('credentials are decoded as UTF-8', async t => {
  t.same(parseBasicAuthorization(`Basic ${b64('jöe:pässwörd€')}`), { username: 'jöe', password: 'pässwörd€' })
})

t.test('an empty password is still a credential', async t => {
  t.same(parseBasicAuthorization(`Basic ${b64('user:')}`), { username: 'user', password: '' })
})

const malformed: Record<string, string | undefined> = {
  'no header': undefined,
  'empty header': '',
  'no scheme': b64('a:b'),
  'another scheme': 'Bearer abc.def',
  'Basic alone': 'Basic',
  'Basic and a space': 'Basic ',
  'no space after the scheme': `Basic${b64('a:b')}`,
  'bad base64 characters': 'Basic a!b@c#d$',
  'base64 without padding': 'Basic YTpiYw',
  'padding in the middle': 'Basic YQ==YTpi',
  'no colon': `Basic ${b64('userpass')}`,
  'a control character in the password': `Basic ${b64('user:pa\u0000ss')}`,
  'a newline in the user-id': `Basic ${b64('us\ner:pass')}`,
  'DEL in the password': `Basic ${b64('user:pa\u007fss')}`,
  'bytes that are not UTF-8': `Basic ${b64(Buffer.from([0x75, 0x3a, 0xff, 0xfe]))}`,
  'an 8 KB header': `Basic ${b64('u:' + 'x'.repeat(6000))}`
}
for (const [name, header] of Object.entries(malformed)) {
  t.test(`a malformed header is refused: ${name}`, async t => {
    t.equal(parseBasicAuthorization(header), null)
  })
}

t.test('matching credentials pass, and each wrong part fails', async t => {
  const expected = expectCredentials('user', 'secret')
  t.equal(credentialsMatch(expected, { username: 'user', password: 'secret' }), true)
  t.equal(credentialsMatch(expected, { username: 'user', password: 'Secret' }), false)
  t.equal(credentialsMatch(expected, { username: 'User', password: 'secret' }), false)
  t.equal(credentialsMatch(expected, { username: 'user', password: 'secret ' }), false)
  t.equal(credentialsMatch(expected, { username: '', password: '' }), false)
})
