#!/usr/bin/env node
/**
 * gms-gate: build the app from options, and the command line (serve | check | diff | hash-password | generate-password).
 */
import { realpathSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import Fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify'
import { gmsGate, type GmsGateOptions } from './plugins/gate.js'
import { OptionsError } from './plugins/options-file.js'
import { compileOptions, loadOptionsFile, loadOptionsText, type LoadedOptions } from './plugins/options-watch.js'
import { CertificateWatcher, readTlsFilesSync } from './plugins/tls-reload.js'
import { generatePassword, hashPassword } from './plugins/secrets.js'
import { formatPolicyTable, formatPortsReport, policyReport } from './plugins/policy-report.js'
import { diffPolicy, formatPolicyDiff, policyDiffReport } from './plugins/policy-diff.js'
import nodeApi from './services/node.js'
import storageApi, { type StorageApiOptions } from './services/storage/storage-api.js'
import serviceApi from './services/service/service-api.js'
import notificationApi from './services/notification/plugin.js'
import gmsMetrics from './plugins/metrics.js'
import gmsAudit from './plugins/audit.js'
import gmsListeners from './plugins/listeners.js'

/** Headers that never reach a log line. */
export const REDACTED_PATHS = ['req.headers.authorization', 'req.headers["proxy-authorization"]', 'req.headers.cookie']

export interface BuildServerOptions extends GmsGateOptions {
  /** Fastify logger options (default: info level, secrets redacted). */
  logger?: FastifyServerOptions['logger']
  /** Storage API options (the memory backend's clock, for tests). */
  storage?: StorageApiOptions
}

/** No line per request (it costs more than the gate itself), but a server-side failure (5xx) always gets one. */
class QuietRequestLog extends LogController {
  constructor () {
    super({ disableRequestLogging: true })
  }

  override defaultErrorLog (error: Error, request: FastifyRequest, reply: FastifyReply): void {
    // A saturated hash limit is logged once per episode by the gate, not per refused request.
    if (reply.statusCode >= 500 && (error as { code?: string }).code !== 'GMS_GATE_HASH_CHECKS_BUSY') {
      reply.log.error({ req: request, res: reply, err: error }, error.message)
    }
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The certificate watcher when serving HTTPS (`[server] tls_cert`), else null. */
    gmsTls: CertificateWatcher | null
  }
}

async function loadFirst (gate: GmsGateOptions): Promise<LoadedOptions | undefined> {
  if (gate.preloaded !== undefined) return gate.preloaded
  if (gate.configPath !== undefined) return loadOptionsFile(gate.configPath)
  if (typeof gate.options === 'string') return loadOptionsText(gate.options)
  return gate.options === undefined ? undefined : compileOptions(gate.options)
}

/** The whole gms-gate app: the gate and the services behind it. */
export async function buildServer (opts: BuildServerOptions): Promise<FastifyInstance> {
  const { logger, storage, ...gate } = opts
  // Read once before the server exists: TLS and proxy trust shape the server itself.
  const preloaded = await loadFirst(gate)
  const security = preloaded?.security
  let https: { cert: Buffer, key: Buffer } | undefined
  if (security?.tls != null) {
    try {
      https = readTlsFilesSync(security.tls)
    } catch (err) {
      const server = preloaded!.options.sections.get('server')
      const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message
      throw new OptionsError(preloaded!.options.file, server?.lines.tls_cert ?? 0, `tls_cert/tls_key in [server] cannot be loaded: ${reason}`)
    }
  }
  const serverOptions: FastifyServerOptions & { https?: { cert: Buffer, key: Buffer } } = {
    logger: logger ?? { level: 'info', redact: REDACTED_PATHS },
    // Denials are logged by the gate.
    logController: new QuietRequestLog(),
    trustProxy: security?.trustProxy ?? false,
    https
  }
  const app = Fastify(serverOptions) as unknown as FastifyInstance
  await app.register(gmsGate, { ...gate, preloaded })
  let tls: CertificateWatcher | null = null
  if (https !== undefined) {
    const watcher = new CertificateWatcher(app.server as unknown as import('node:https').Server, security!.tls!, https, app.log)
    if (gate.watch !== false) await watcher.start()
    app.gmsGate.watcher?.on('reload', ({ loaded }: { loaded: LoadedOptions }) => {
      if (loaded.security.tls !== null) watcher.retarget(loaded.security.tls).catch(() => {})
    })
    app.addHook('onClose', () => watcher.close())
    tls = watcher
  }
  app.decorate('gmsTls', tls)
  await app.register(gmsListeners)
  await app.register(nodeApi)
  // Before the services that keep data in it (`app.gmsStorage`).
  await app.register(storageApi, storage ?? {})
  await app.register(serviceApi)
  await app.register(notificationApi)
  // After the services: the metrics read their counts.
  await app.register(gmsMetrics)
  await app.register(gmsAudit)
  return app
}

const USAGE = `usage: gms-gate [serve] [--config FILE] [--port N] [--host H]   (--port replaces [server] port, else the first of ports)
       gms-gate check [--config FILE] [--json]
       gms-gate diff OLD NEW [--json]                              (exit 0: no access change, 1: some, 2: invalid file)
       gms-gate hash-password [--algorithm argon2id|scrypt|bcrypt]   (password from stdin or a prompt)
       gms-gate generate-password [--algorithm argon2id|scrypt|bcrypt]`

const ALGORITHMS = ['argon2id', 'scrypt', 'bcrypt'] as const
type Algorithm = typeof ALGORITHMS[number]

/** Read a password without echo from a terminal, or all of stdin (one trailing newline dropped). */
async function readPassword (): Promise<string> {
  const stdin = process.stdin
  if (!stdin.isTTY) {
    const chunks: Buffer[] = []
    for await (const chunk of stdin) chunks.push(chunk as Buffer)
    return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '')
  }
  const ask = (prompt: string): Promise<string> => new Promise((resolve, reject) => {
    process.stderr.write(prompt)
    let typed = ''
    stdin.setRawMode(true)
    stdin.resume()
    const onData = (data: Buffer): void => {
      for (const ch of data.toString('utf8')) {
        if (ch === '\r' || ch === '\n' || ch === '\u0004') {
          stdin.off('data', onData)
          stdin.setRawMode(false)
          stdin.pause()
          process.stderr.write('\n')
          return resolve(typed)
        }
        if (ch === '\u0003') {
          stdin.off('data', onData)
          stdin.setRawMode(false)
          return reject(new Error('interrupted'))
        }
        typed = ch === '\u007f' || ch === '\b' ? typed.slice(0, -1) : typed + ch
      }
    }
    stdin.on('data', onData)
  })
  const first = await ask('Password: ')
  if (await ask('Again: ') !== first) throw new Error('the two passwords differ')
  return first
}

/** `check`: the effective policy as a table, or as JSON (`--json`, errors too: `{"error": {file, line, reason}}`). */
async function check (config: string, json: boolean): Promise<number> {
  let loaded: LoadedOptions
  try {
    loaded = await loadOptionsFile(config)
  } catch (err) {
    if (!json || !(err instanceof OptionsError)) throw err
    process.stdout.write(`${JSON.stringify({ error: { file: err.file, line: err.line, reason: err.reason } })}\n`)
    return 2
  }
  const report = policyReport(loaded)
  if (json) {
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`)
    return 0
  }
  for (const w of report.warnings) process.stdout.write(`warning: ${w.file}:${w.line}: ${w.message}\n`)
  process.stdout.write(`${config}: valid (options hash ${report.optionsHash})\n\n${formatPolicyTable(report.rows)}\n\n${formatPortsReport(report.ports)}\n`)
  return 0
}

/**
 * `diff OLD NEW`: who gains or loses access; exit 0 when nobody does, 1 when someone does, 2 on an
 * invalid file. `--json` prints `{old, new, accessChanged, changes}`, or `{"error": {file, line, reason, which}}`.
 */
async function diff (files: string[], json: boolean): Promise<number> {
  if (files.length !== 2) {
    process.stderr.write(`gms-gate: diff takes two options files, OLD and NEW\n${USAGE}\n`)
    return 64
  }
  const loaded: LoadedOptions[] = []
  for (const [i, file] of files.entries()) {
    const which = i === 0 ? 'OLD' : 'NEW'
    try {
      loaded.push(await loadOptionsFile(file))
    } catch (err) {
      if (!(err instanceof OptionsError)) throw err
      if (json) process.stdout.write(`${JSON.stringify({ error: { file: err.file, line: err.line, reason: err.reason, which } })}\n`)
      else process.stderr.write(`gms-gate: invalid ${which} options: ${err.message}\n`)
      return 2
    }
  }
  const changes = diffPolicy(loaded[0]!, loaded[1]!)
  const report = policyDiffReport(changes)
  if (json) process.stdout.write(`${JSON.stringify({ old: files[0], new: files[1], ...report }, null, 2)}\n`)
  else process.stdout.write(`${formatPolicyDiff(changes)}\n`)
  return report.accessChanged ? 1 : 0
}

/** Run the command line; resolves to the exit code (serve resolves once listening). */
export async function main (argv: string[]): Promise<number> {
  let parsed
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: 'string', short: 'c', default: 'config.ini' },
        port: { type: 'string', short: 'p' },
        host: { type: 'string' },
        algorithm: { type: 'string', short: 'a', default: 'argon2id' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' }
      }
    })
  } catch (err) {
    process.stderr.write(`gms-gate: ${(err as Error).message}\n${USAGE}\n`)
    return 64
  }
  const { values, positionals } = parsed
  const command = positionals[0] ?? 'serve'
  if (values.help === true) {
    process.stdout.write(`${USAGE}\n`)
    return 0
  }
  const config = values.config!
  if (command === 'hash-password' || command === 'generate-password') {
    const algorithm = values.algorithm as Algorithm
    if (!ALGORITHMS.includes(algorithm)) {
      process.stderr.write(`gms-gate: --algorithm must be one of ${ALGORITHMS.join(', ')}\n`)
      return 64
    }
    // A password on the command line would sit in the shell history and in ps for everyone to read.
    if (positionals.length > 1) {
      process.stderr.write(`gms-gate: ${command} takes no password argument; type it at the prompt or pipe it on stdin\n`)
      return 64
    }
    if (command === 'generate-password') {
      const password = generatePassword()
      process.stdout.write(`password: ${password}\nhash:     ${await hashPassword(password, algorithm)}\n`)
      return 0
    }
    let password: string
    try {
      password = await readPassword()
    } catch (err) {
      process.stderr.write(`gms-gate: ${(err as Error).message}\n`)
      return 1
    }
    if (password === '') {
      process.stderr.write('gms-gate: empty password (an empty password option means no authentication)\n')
      return 1
    }
    process.stdout.write(`${await hashPassword(password, algorithm)}\n`)
    return 0
  }
  try {
    if (command === 'check') return await check(config, values.json === true)
    if (command === 'diff') return await diff(positionals.slice(1), values.json === true)
    if (command !== 'serve') {
      process.stderr.write(`gms-gate: unknown command "${command}"\n${USAGE}\n`)
      return 64
    }
    if (values.port !== undefined && !/^\d{1,5}$/.test(values.port)) {
      process.stderr.write(`gms-gate: --port must be a number, got ${JSON.stringify(values.port)}\n`)
      return 64
    }
    const app = await buildServer({ configPath: config, sighup: true })
    await app.gmsListen({ host: values.host, port: values.port !== undefined ? Number(values.port) : undefined })
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      process.once(signal, () => { app.close().then(() => process.exit(0), () => process.exit(1)) })
    }
    return 0
  } catch (err) {
    if (err instanceof OptionsError) {
      process.stderr.write(`gms-gate: invalid options: ${err.message}\n`)
      return 2
    }
    throw err
  }
}

function isMain (): boolean {
  try {
    return process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)
  } catch {
    return false
  }
}

if (isMain()) {
  const code = await main(process.argv.slice(2))
  if (code !== 0) process.exit(code)
}
