import { resolve } from 'node:path';
import { GatehouseError } from '../core/errors/index.js';
import { parseAuthority } from '../core/netguard/index.js';
import { parseDuration } from '../core/util/duration.js';

/**
 * Runtime settings (where to listen, where state lives), as opposed to policy. Precedence: command-line flag,
 * then environment variable, then the default here. This is the only place that reads GATEHOUSE_* variables.
 */
export const RUNTIME_DEFAULTS = Object.freeze({
  state: './.gatehouse',
  egressListen: '127.0.0.1:3128',
  adminListen: '127.0.0.1:8181',
  brokerListen: '127.0.0.1:9112',
  logLevel: 'info',
  drainTimeout: '10s',
  issuer: 'gatehouse',
});

export const ENVIRONMENT = Object.freeze({
  state: 'GATEHOUSE_STATE',
  policy: 'GATEHOUSE_POLICY',
  egressListen: 'GATEHOUSE_EGRESS_LISTEN',
  adminListen: 'GATEHOUSE_ADMIN_LISTEN',
  brokerListen: 'GATEHOUSE_BROKER_LISTEN',
  logLevel: 'GATEHOUSE_LOG_LEVEL',
  drainTimeout: 'GATEHOUSE_DRAIN_TIMEOUT',
  issuer: 'GATEHOUSE_ISSUER',
  adminUrl: 'GATEHOUSE_ADMIN_URL',
  adminToken: 'GATEHOUSE_ADMIN_TOKEN',
});

export interface Listen {
  readonly host: string;
  readonly port: number;
}

export interface RuntimeConfig {
  readonly stateDir: string;
  /** Null: use (and on first run create) the default policy in the state directory. */
  readonly policyFile: string | null;
  readonly egress: Listen;
  readonly admin: Listen;
  /** IP:PORT, or a unix socket (`unix:/path`). */
  readonly broker: Listen | { readonly socket: string };
  readonly logLevel: string;
  readonly drainTimeoutMs: number;
  readonly issuer: string;
}

type Flags = Readonly<Record<string, string | boolean | readonly string[] | undefined>>;

const pick = (flags: Flags, flag: string, env: string, fallback: string): string => {
  const fromFlag = flags[flag];
  if (typeof fromFlag === 'string') return fromFlag;
  const fromEnv = process.env[env];
  return fromEnv !== undefined && fromEnv !== '' ? fromEnv : fallback;
};

function parseListen(text: string, what: string): Listen {
  // Port 0 asks the OS for a free port (the banner prints the one chosen).
  const parsed = text.endsWith(':0') ? { ...parseAuthority(`${text.slice(0, -2)}:1`, null), port: 0 } : parseAuthority(text, null);
  if (!parsed?.host || parsed.host.kind !== 'ip') throw new GatehouseError('GH_ERR_CONFIG_INVALID', { detail: `${what} must be IP:PORT (for example 127.0.0.1:3128), got "${text}"` });
  return { host: parsed.host.host, port: parsed.port };
}

/** The broker may listen on a unix socket, so a sandbox reaches it through a bind mount and no network at all. */
function parseBrokerListen(text: string): Listen | { socket: string } {
  if (text.startsWith('unix:')) {
    const socket = text.slice(5);
    if (!socket.startsWith('/')) throw new GatehouseError('GH_ERR_CONFIG_INVALID', { detail: `broker socket must be an absolute path (unix:/run/gatehouse/broker.sock), got "${text}"` });
    return { socket };
  }
  return parseListen(text, 'broker listen address');
}

const LOG_LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

/**
 * What a command needs from the runtime settings. `serve` (`gatehouse up`) reads all of them; `admin-client`
 * commands also need to find the admin API; `local` ones only the state directory. A command neither reads nor
 * validates what it does not need, so a server's environment cannot break `gatehouse audit verify` run beside it.
 */
export type ConfigNeeds = 'serve' | 'admin-client' | 'local';

/** The policy file named by --policy or GATEHOUSE_POLICY, as given (for messages); null when neither is set. */
export function policyFileSetting(flags: Flags): string | null {
  const policy = pick(flags, 'policy', ENVIRONMENT.policy, '');
  return policy === '' ? null : policy;
}

/** Resolve the settings a command uses (see ConfigNeeds). */
export function runtimeConfig(flags: Flags, needs: ConfigNeeds): RuntimeConfig {
  const serving = needs === 'serve';
  const state = resolve(pick(flags, 'state', ENVIRONMENT.state, RUNTIME_DEFAULTS.state));
  const logLevel = serving ? pick(flags, 'log-level', ENVIRONMENT.logLevel, RUNTIME_DEFAULTS.logLevel) : RUNTIME_DEFAULTS.logLevel;
  if (!LOG_LEVELS.has(logLevel)) throw new GatehouseError('GH_ERR_CONFIG_INVALID', { detail: `log level must be one of ${[...LOG_LEVELS].join(', ')}` });
  const drainText = serving ? pick(flags, 'drain-timeout', ENVIRONMENT.drainTimeout, RUNTIME_DEFAULTS.drainTimeout) : RUNTIME_DEFAULTS.drainTimeout;
  const drain = parseDuration(drainText);
  if (drain === null) throw new GatehouseError('GH_ERR_CONFIG_INVALID', { detail: `drain timeout must be a duration such as 10s, got "${drainText}"` });
  // The admin address matters to `up` (to listen) and to commands that call the admin API (to find it, unless
  // --admin-url says where it is).
  const adminClient = needs === 'admin-client' && typeof flags['admin-url'] !== 'string';
  const adminText = serving || adminClient || typeof flags['admin-listen'] === 'string' ? pick(flags, 'admin-listen', ENVIRONMENT.adminListen, RUNTIME_DEFAULTS.adminListen) : RUNTIME_DEFAULTS.adminListen;
  return {
    stateDir: state,
    policyFile: ((p) => (p === null ? null : resolve(p)))(policyFileSetting(flags)),
    egress: parseListen(serving ? pick(flags, 'egress-listen', ENVIRONMENT.egressListen, RUNTIME_DEFAULTS.egressListen) : RUNTIME_DEFAULTS.egressListen, 'egress listen address'),
    admin: parseListen(adminText, 'admin listen address'),
    broker: parseBrokerListen(serving ? pick(flags, 'broker-listen', ENVIRONMENT.brokerListen, RUNTIME_DEFAULTS.brokerListen) : RUNTIME_DEFAULTS.brokerListen),
    logLevel,
    drainTimeoutMs: drain,
    issuer: pick(flags, 'issuer', ENVIRONMENT.issuer, RUNTIME_DEFAULTS.issuer),
  };
}

/** The admin API URL and token for commands that call a running Gatehouse. */
export function adminTarget(flags: Flags, config: RuntimeConfig): { url: string; tokenFromEnv: string | null } {
  const url = pick(flags, 'admin-url', ENVIRONMENT.adminUrl, `http://${config.admin.host.includes(':') ? `[${config.admin.host}]` : config.admin.host}:${config.admin.port}`);
  const token = process.env[ENVIRONMENT.adminToken];
  return { url: url.replace(/\/+$/, ''), tokenFromEnv: token !== undefined && token !== '' ? token : null };
}
