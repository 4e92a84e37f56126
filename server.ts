#!/usr/bin/env node
/**
 * gms-gate: build the app from options, and the command line (serve | check).
 */
import { realpathSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import Fastify, { LogController, type FastifyInstance, type FastifyServerOptions } from 'fastify'
import { gmsGate, type GmsGateOptions } from './plugins/gate.js'
import { OptionsError } from './plugins/options-file.js'
import { loadOptionsFile } from './plugins/options-watch.js'
import { describePolicy, formatPolicyTable } from './plugins/policy-report.js'
import nodeApi from './services/node.js'
import notificationApi from './services/notification/plugin.js'

/** Headers that never reach a log line. */
export const REDACTED_PATHS = ['req.headers.authorization', 'req.headers["proxy-authorization"]', 'req.headers.cookie']

export interface BuildServerOptions extends GmsGateOptions {
  /** Fastify logger options (default: info level, secrets redacted). */
  logger?: FastifyServerOptions['logger']
}

/** The whole gms-gate app: the gate and the services behind it. */
export async function buildServer (opts: BuildServerOptions): Promise<FastifyInstance> {
  const { logger, ...gate } = opts
  const app = Fastify({
    logger: logger ?? { level: 'info', redact: REDACTED_PATHS },
    // One log line per request costs more than the gate itself; denials are logged by the gate.
    logController: new LogController({ disableRequestLogging: true })
  })
  await app.register(gmsGate, gate)
  await app.register(nodeApi)
  await app.register(notificationApi)
  return app
}

const USAGE = `usage: gms-gate [serve] [--config FILE] [--port N] [--host H]
       gms-gate check [--config FILE]`

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
  try {
    if (command === 'check') {
      const loaded = await loadOptionsFile(config)
      for (const w of loaded.options.warnings) process.stdout.write(`warning: ${w.file}:${w.line}: ${w.message}\n`)
      process.stdout.write(`${config}: valid (options hash ${loaded.options.hash})\n\n${formatPolicyTable(describePolicy(loaded))}\n`)
      return 0
    }
    if (command !== 'serve') {
      process.stderr.write(`gms-gate: unknown command "${command}"\n${USAGE}\n`)
      return 64
    }
    if (values.port !== undefined && !/^\d{1,5}$/.test(values.port)) {
      process.stderr.write(`gms-gate: --port must be a number, got ${JSON.stringify(values.port)}\n`)
      return 64
    }
    const app = await buildServer({ configPath: config, sighup: true })
    const { listen } = app.gmsGate.current().options
    await app.listen({ host: values.host ?? listen.host, port: values.port !== undefined ? Number(values.port) : listen.port })
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
