#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { GatehouseError, isGatehouseError } from '../core/errors/index.js';
import { formatProblem, type Problem } from '../core/policy/index.js';
import { auditQuery, auditSinks, auditTail, auditVerify } from './audit-command.js';
import { policyDiff, policyExplain, policyLint, policySchemaCommand, policyTest } from './policy-command.js';
import { runUp } from './run-up.js';
import { runtimeConfig, type ConfigNeeds, type RuntimeConfig } from './runtime-config.js';
import { keysRotate, tokenIssue, tokenRevoke } from './token-command.js';
import { USAGE } from './usage.js';

const out = (s: string): void => void process.stdout.write(`${s}\n`);
const err = (s: string): void => void process.stderr.write(`${s}\n`);

// Each command accepts only the flags that mean something to it: a mistyped or misplaced flag is an error.
const STATE = { state: { type: 'string' }, help: { type: 'boolean', short: 'h' } } as const;
const ADMIN = { 'admin-url': { type: 'string' }, 'admin-listen': { type: 'string' } } as const;
const FILTERS = {
  session: { type: 'string' },
  tenant: { type: 'string' },
  decision: { type: 'string' },
  reason: { type: 'string', multiple: true },
  source: { type: 'string', multiple: true },
  since: { type: 'string' },
  until: { type: 'string' },
} as const;

const oneDir = (positionals: readonly string[]): string | undefined => {
  if (positionals.length > 1) throw new GatehouseError('GH_ERR_USAGE', { detail: 'at most one DIR (the audit directory)' });
  return positionals[0];
};

const OPTIONS = {
  up: {
    ...STATE,
    policy: { type: 'string' },
    'egress-listen': { type: 'string' },
    'admin-listen': { type: 'string' },
    'broker-listen': { type: 'string' },
    'log-level': { type: 'string' },
    'drain-timeout': { type: 'string' },
    issuer: { type: 'string' },
  },
  'token issue': {
    ...STATE,
    policy: { type: 'string' },
    issuer: { type: 'string' },
    tenant: { type: 'string' },
    session: { type: 'string' },
    allow: { type: 'string', multiple: true },
    filesystem: { type: 'string' },
    mount: { type: 'string', multiple: true },
    upstream: { type: 'string', multiple: true },
    ttl: { type: 'string' },
    json: { type: 'boolean' },
  },
  'token revoke': { ...STATE, ...ADMIN, session: { type: 'string' }, reason: { type: 'string' } },
  'keys rotate': { ...STATE, ...ADMIN },
  'audit verify': { ...STATE, json: { type: 'boolean' } },
  'audit tail': { ...STATE, ...FILTERS, lines: { type: 'string', short: 'n' }, follow: { type: 'boolean', short: 'f' }, json: { type: 'boolean' } },
  'audit query': { ...STATE, ...FILTERS, limit: { type: 'string' }, json: { type: 'boolean' } },
  'audit sinks': { ...STATE, ...ADMIN, json: { type: 'boolean' } },
  'policy lint': { help: { type: 'boolean', short: 'h' }, format: { type: 'string' }, strict: { type: 'boolean' }, list: { type: 'boolean' } },
  'policy explain': {
    help: { type: 'boolean', short: 'h' },
    policy: { type: 'string' },
    tenant: { type: 'string' },
    grant: { type: 'string', multiple: true },
    token: { type: 'string' },
    address: { type: 'string', multiple: true },
    file: { type: 'string' },
    op: { type: 'string' },
    upstream: { type: 'string' },
    mount: { type: 'string', multiple: true },
    'grant-upstream': { type: 'string', multiple: true },
    format: { type: 'string' },
  },
  'policy test': { help: { type: 'boolean', short: 'h' }, format: { type: 'string' } },
  'policy diff': { help: { type: 'boolean', short: 'h' }, format: { type: 'string' } },
  'policy schema': { help: { type: 'boolean', short: 'h' }, tests: { type: 'boolean' } },
} as const;

const POSITIONALS: ReadonlySet<Command> = new Set(['audit verify', 'audit tail', 'audit query', 'policy lint', 'policy explain', 'policy test', 'policy diff']);

type Command = keyof typeof OPTIONS;

function commandOf(argv: readonly string[]): { command: Command | null; rest: string[] } {
  const [a, b, ...more] = argv;
  if (a && b && `${a} ${b}` in OPTIONS) return { command: `${a} ${b}` as Command, rest: more };
  if (a && a in OPTIONS) return { command: a as Command, rest: argv.slice(1) };
  return { command: null, rest: [] };
}

async function main(argv: readonly string[]): Promise<number> {
  if (argv.length === 0 || argv[0] === 'help' || argv[0] === '--help' || argv[0] === '-h') {
    out(USAGE);
    return 0;
  }
  if (argv[0] === 'version' || argv[0] === '--version') {
    out('gatehouse 0.1.0');
    return 0;
  }
  const { command, rest } = commandOf(argv);
  if (!command) {
    err(`gatehouse: unknown command "${argv.slice(0, 2).join(' ')}"\n\n${USAGE}`);
    return 2;
  }
  let parsed;
  try {
    parsed = parseArgs({ args: rest, options: OPTIONS[command], allowPositionals: POSITIONALS.has(command), strict: true });
  } catch (e) {
    err(`gatehouse ${command}: ${(e as Error).message}\nRun "gatehouse --help" for usage.`);
    return 2;
  }
  const flags = parsed.values as Record<string, string | boolean | string[] | undefined>;
  if (flags['help']) {
    out(USAGE);
    return 0;
  }
  const config = (needs: ConfigNeeds): RuntimeConfig => runtimeConfig(flags as Record<string, string | boolean | undefined>, needs);
  switch (command) {
    case 'up':
      return runUp(config('serve'), out, err);
    case 'token issue':
      return tokenIssue(flags, config('local'), out, err);
    case 'token revoke':
      return tokenRevoke(flags, config('admin-client'), out);
    case 'keys rotate':
      return keysRotate(flags, config('admin-client'), out);
    case 'audit verify':
      return auditVerify(parsed.positionals[0], flags['json'] === true, config('local'), out);
    case 'audit tail':
      return auditTail(oneDir(parsed.positionals), flags, config('local'), out);
    case 'audit query':
      return auditQuery(oneDir(parsed.positionals), flags, config('local'), out);
    case 'audit sinks':
      return auditSinks(flags, config('admin-client'), out, err);
    case 'policy lint':
      return policyLint(parsed.positionals, flags, out);
    case 'policy explain':
      return policyExplain(parsed.positionals, flags, out);
    case 'policy test':
      return policyTest(parsed.positionals, flags, out);
    case 'policy diff':
      return policyDiff(parsed.positionals, flags, out, err);
    case 'policy schema':
      return policySchemaCommand(flags, out);
  }
}

function report(e: unknown): number {
  if (isGatehouseError(e)) {
    if (e.code === 'GH_ERR_USAGE') {
      err(`gatehouse: ${e.message}\nRun "gatehouse --help" for usage.`);
      return 2;
    }
    err(`gatehouse: ${e.code}: ${e.message}`);
    for (const d of e.details) err(`  ${typeof d === 'object' && d !== null && 'line' in d ? formatProblem(d as Problem) : JSON.stringify(d)}`);
    return 1;
  }
  err(`gatehouse: unexpected error: ${(e as Error).message}`);
  return 1;
}

// A reader that goes away (`gatehouse audit verify | head`) is not an error worth a stack trace.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw err;
});

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.exitCode = report(e);
  },
);
