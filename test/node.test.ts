import { writeFile } from 'node:fs/promises'
import t from 'tap'
import { appOnFile, appOnText, basic } from './helpers/app.js'

const INI = '[server]\nusername = admin\npassword = adm1n-secret\n[storage]\nusername = store\npassword = st0re-secret\n[dfm.spare]\nusername = up\npassword = upstr3am-secret\n'

t.test('admin/options asks for [server] credentials', async t => {
  const { app } = await appOnText(t, INI)
  t.equal((await app.inject('/genesys/1/admin/options')).statusCode, 401)
  t.equal((await app.inject({ url: '/genesys/1/admin/options', headers: { authorization: basic('store', 'st0re-secret') } })).statusCode, 401)
})

t.test('admin/options returns the effective view of check --json and no password value', async t => {
  const { app } = await appOnText(t, INI)
  const res = await app.inject({ url: '/genesys/1/admin/options', headers: { authorization: basic('admin', 'adm1n-secret') } })
  t.equal(res.statusCode, 200)
  const body = res.json()
  t.match(body, {
    file: '<inline>',
    optionsHash: /^[0-9a-f]{16}$/,
    rows: [
      { section: '[storage]', auth: 'on', username: 'store', password: 'set (plaintext) from [storage]' },
      { section: '[notification]', username: 'admin', password: 'set (plaintext) from [server]' }
    ],
    ports: { host: '127.0.0.1', listen: [8080], metricsPort: null, restrictions: [] }
  })
  t.ok(body.warnings.some((w: { message: string }) => w.message === '[dfm.spare] is not used: no service names it in _upstream'))
  t.ok(body.warnings.some((w: { message: string }) => /password in \[storage\] is plaintext/.test(w.message)))
  t.notMatch(res.body, /adm1n-secret|st0re-secret|upstr3am-secret/)
})

t.test('admin/options shows a reloaded file on the next request', async t => {
  const { app, file, nextReload } = await appOnFile(t, INI)
  const auth = { authorization: basic('admin', 'adm1n-secret') }
  const before = (await app.inject({ url: '/genesys/1/admin/options', headers: auth })).json()
  const reloaded = nextReload()
  await writeFile(file, INI.replace('username = store', 'username = keeper'))
  await reloaded
  const after = (await app.inject({ url: '/genesys/1/admin/options', headers: auth })).json()
  t.equal(after.file, file)
  t.not(after.optionsHash, before.optionsHash)
  t.match(after.rows[0], { section: '[storage]', username: 'keeper' })
})
