import { execFileSync } from 'node:child_process'
import { once } from 'node:events'
import { readFile, rename, writeFile } from 'node:fs/promises'
import { request } from 'node:https'
import type { TLSSocket } from 'node:tls'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { appOnFile, appOnText, basic, tempDir } from './helpers/app.js'
import { freePort } from './helpers/redis.js'

/** A fresh self-signed certificate for 127.0.0.1 with the given common name. */
function selfSigned (dir: string, name: string): { cert: string, key: string } {
  const cert = join(dir, `${name}.crt`)
  const key = join(dir, `${name}.key`)
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-subj', `/CN=${name}`, '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert], { stdio: 'ignore' })
  return { cert, key }
}

/** GET over HTTPS, trusting `ca`; resolves with the status and the certificate's common name. */
async function httpsGet (port: number, path: string, ca: Buffer, headers: Record<string, string> = {}): Promise<{ status: number, cn: string }> {
  const req = request({ host: '127.0.0.1', port, path, ca, headers, agent: false })
  req.end()
  const [res] = await once(req, 'response')
  res.resume()
  const cn = String(res.socket.getPeerCertificate().subject.CN)
  await once(res, 'end')
  return { status: res.statusCode, cn }
}

const PW = 'tls-pw-55e1'
const configFor = (cert: string, key: string, extra = ''): string =>
  `[server]\nusername = u\npassword = ${PW}\nplaintext_passwords = allow\ntls_cert = ${cert}\ntls_key = ${key}\n${extra}`

async function httpsApp (t: Test, extra = '') {
  const dir = await tempDir(t)
  const first = selfSigned(dir, 'first')
  const h = await appOnFile(t, configFor(first.cert, first.key, extra))
  await h.app.listen({ port: 0, host: '127.0.0.1' })
  return { ...h, dir, first, port: (h.app.server.address() as { port: number }).port }
}

t.test('with tls_cert and tls_key the gate serves HTTPS and checks credentials', async t => {
  const { port, first } = await httpsApp(t)
  const ca = await readFile(first.cert)
  t.equal((await httpsGet(port, '/genesys/1/node', ca)).status, 401)
  const ok = await httpsGet(port, '/genesys/1/node', ca, { authorization: basic('u', PW) })
  t.equal(ok.status, 200)
  t.equal(ok.cn, 'first')
})

t.test('a renewed certificate is served without a restart', async t => {
  const { port, app, dir } = await httpsApp(t)
  const second = selfSigned(join(dir, '..'), 'second')
  const reloaded = once(app.gmsTls!, 'reload')
  // Renewal tools write new files and rename them over the old ones.
  await rename(second.key, join(dir, 'first.key'))
  await rename(second.cert, join(dir, 'first.crt'))
  await reloaded
  const res = await httpsGet(port, '/health', await readFile(join(dir, 'first.crt')))
  t.equal(res.cn, 'second')
})

t.test('a bad certificate keeps the old one in force and says why', async t => {
  const { port, app, dir, logs } = await httpsApp(t)
  const rejected = once(app.gmsTls!, 'reload-error')
  await writeFile(join(dir, 'first.crt'), '-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n')
  await rejected
  t.ok(logs.contains('previous certificate stays in force'))
  // The file now holds garbage, so look at what is served without verifying it.
  const res = await new Promise<string>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/health', rejectUnauthorized: false, agent: false }, res => {
      resolve(String((res.socket as TLSSocket).getPeerCertificate().subject.CN))
      res.resume()
    })
    req.on('error', reject)
    req.end()
  })
  t.equal(res, 'first')
})

t.test('an unreadable certificate at start is an options error on the tls_cert line', async t => {
  const dir = await tempDir(t)
  const { buildServer } = await import('../server.js')
  const file = join(dir, 'config.ini')
  await writeFile(file, configFor(join(dir, 'missing.crt'), join(dir, 'missing.key')))
  await t.rejects(buildServer({ configPath: file, logger: false }), { code: 'GMS_GATE_BAD_OPTIONS', line: 5 })
})

t.test('https_only refuses a protected request over plain HTTP with a 403 that says why', async t => {
  const { app } = await appOnText(t, `[server]\nusername = u\npassword = ${PW}\nhttps_only = true\ntrust_proxy = true\n`)
  const plain = await app.inject({ url: '/genesys/1/node', headers: { authorization: basic('u', PW) } })
  t.equal(plain.statusCode, 403)
  t.equal(plain.json().code, 'GMS_GATE_HTTPS_REQUIRED')
  t.match(plain.json().message, /HTTPS only/)
  t.equal((await app.inject({ url: '/health' })).statusCode, 200, 'open paths stay open')
  const proxied = await app.inject({ url: '/genesys/1/node', headers: { authorization: basic('u', PW), 'x-forwarded-proto': 'https' } })
  t.equal(proxied.statusCode, 200, 'a trusted proxy that terminated TLS says so')
})

t.test('without trust_proxy, X-Forwarded-Proto does not count as HTTPS', async t => {
  const { app } = await appOnText(t, `[server]\nusername = u\npassword = ${PW}\nhttps_only = true\n`)
  const res = await app.inject({ url: '/genesys/1/node', headers: { authorization: basic('u', PW), 'x-forwarded-proto': 'https' } })
  t.equal(res.statusCode, 403)
})

t.test('https_only over HTTPS lets credentials through', async t => {
  const { port, first } = await httpsApp(t, 'https_only = true\n')
  t.equal((await httpsGet(port, '/genesys/1/node', await readFile(first.cert), { authorization: basic('u', PW) })).status, 200)
})

t.test('every port of [server] ports serves HTTPS, and a renewed certificate reaches them all', async t => {
  const dir = await tempDir(t)
  const first = selfSigned(dir, 'first')
  const [api, other] = [await freePort(), await freePort()]
  t.not(api, other)
  const h = await appOnFile(t, configFor(first.cert, first.key, `port = ${api}\nports = ${other}\n`))
  await h.app.gmsListen({ host: '127.0.0.1' })
  const ca = await readFile(first.cert)
  const ok = await httpsGet(other, '/genesys/1/node', ca, { authorization: basic('u', PW) })
  t.same(ok, { status: 200, cn: 'first' })
  t.equal((await httpsGet(other, '/genesys/1/node', ca)).status, 401)

  const second = selfSigned(join(dir, '..'), 'second')
  const reloaded = once(h.app.gmsTls!, 'reload')
  await rename(second.key, join(dir, 'first.key'))
  await rename(second.cert, join(dir, 'first.crt'))
  await reloaded
  const renewed = await readFile(join(dir, 'first.crt'))
  t.equal((await httpsGet(other, '/health', renewed)).cn, 'second')
  t.equal((await httpsGet(api, '/health', renewed)).cn, 'second')
})

t.test('removing tls_cert and tls_key is logged as needing a restart, and HTTPS goes on', async t => {
  const { port, first, file, nextReload, logs } = await httpsApp(t)
  const reloaded = nextReload()
  await writeFile(file, `[server]\nusername = u\npassword = ${PW}\nplaintext_passwords = allow\n`)
  await reloaded
  t.ok(logs.lines.some(l => l.option === '[server] tls_cert, tls_key (on or off)' && l.msg?.includes('restart needed')))
  t.equal((await httpsGet(port, '/health', await readFile(first.cert))).status, 200)
})
