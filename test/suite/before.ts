// Start each run with an empty log audit (see test/helpers/log-audit.ts).
import { rmSync } from 'node:fs'
import { AUDIT_DIR } from '../helpers/log-audit.js'

rmSync(AUDIT_DIR, { recursive: true, force: true })
