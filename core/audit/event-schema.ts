import { GatehouseError } from '../errors/index.js';
import { isReason } from '../errors/reasons.js';
import { OCSF_CLASS, OCSF_VERSION } from './ocsf.js';

/**
 * What every event Gatehouse writes must satisfy: the OCSF 1.4.0 requirements for the classes it emits (base
 * event, metadata, class-required objects, at_least_one constraints, nested required fields) plus Gatehouse's
 * own invariants (a known reason code, the policy version, action and disposition agreeing). Checked before
 * each event is written, so it is plain code: a few microseconds, not a schema interpreter.
 */

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const isInt = (v: unknown): v is number => Number.isInteger(v);
const isStr = (v: unknown): v is string => typeof v === 'string' && v.length > 0;

class Invalid extends Error {}
const need = (ok: boolean, what: string): void => {
  if (!ok) throw new Invalid(what);
};
// Messages with a name in them are built only on failure: a template literal per check cost more than the
// checks themselves (this runs twice per event on the data plane, see AuditLog.append).
const invalid = (what: string): never => {
  throw new Invalid(what);
};
const INTEGER_FIELDS = ['class_uid', 'category_uid', 'activity_id', 'type_uid', 'severity_id', 'time'] as const;

function endpoint(v: unknown, name: string): void {
  if (!isObj(v)) invalid(`${name} must be an object`);
  const e = v as Obj;
  if (e['ip'] === undefined && e['hostname'] === undefined && e['name'] === undefined) invalid(`${name} needs ip, hostname or name`);
  const port = e['port'];
  if (port !== undefined && !(isInt(port) && port >= 0 && port <= 65535)) invalid(`${name}.port out of range`);
}

function user(v: unknown, name: string): void {
  if (!(isObj(v) && (isStr(v['name']) || isStr(v['uid'])))) invalid(`${name} needs name or uid`);
}

function network(e: Obj): void {
  need(e['src_endpoint'] !== undefined || e['dst_endpoint'] !== undefined, 'at_least_one of src_endpoint, dst_endpoint');
  if (e['src_endpoint'] !== undefined) endpoint(e['src_endpoint'], 'src_endpoint');
  if (e['dst_endpoint'] !== undefined && Object.keys(e['dst_endpoint'] as Obj).length > 0) endpoint(e['dst_endpoint'], 'dst_endpoint');
  if (e['connection_info'] !== undefined) need(isInt((e['connection_info'] as Obj)['direction_id']), 'connection_info.direction_id is required');
}

const CLASS_CHECKS: Readonly<Record<number, (e: Obj) => void>> = {
  [OCSF_CLASS.network_activity.class_uid]: network,
  [OCSF_CLASS.http_activity.class_uid]: (e) => {
    network(e);
    need(e['http_request'] !== undefined || e['http_response'] !== undefined, 'at_least_one of http_request, http_response');
    if (e['http_request'] !== undefined) {
      const r = e['http_request'] as Obj;
      need(isStr(r['http_method']), 'http_request.http_method is required');
      need(isObj(r['url']) && typeof (r['url'] as Obj)['path'] === 'string', 'http_request.url.path is required');
    }
    if (e['http_response'] !== undefined) need(isInt((e['http_response'] as Obj)['code']), 'http_response.code is required');
  },
  [OCSF_CLASS.authentication.class_uid]: (e) => {
    user(e['user'], 'user');
    need(e['service'] !== undefined || e['dst_endpoint'] !== undefined, 'at_least_one of service, dst_endpoint');
  },
  [OCSF_CLASS.api_activity.class_uid]: (e) => {
    const actor = e['actor'];
    need(isObj(actor), 'actor is required');
    const a = actor as Obj;
    need(a['user'] !== undefined || a['app_name'] !== undefined || a['session'] !== undefined, 'actor needs user, session or app_name');
    if (a['user'] !== undefined) user(a['user'], 'actor.user');
    need(isObj(e['api']) && isStr((e['api'] as Obj)['operation']), 'api.operation is required');
    const request = (e['api'] as Obj)['request'];
    if (request !== undefined) need(isStr((request as Obj)['uid']), 'api.request.uid is required');
    endpoint(e['src_endpoint'], 'src_endpoint');
  },
};

const POLICY_VERSION = /^sha256:[0-9a-f]{16}$/;

function check(e: Obj): void {
  for (const k of INTEGER_FIELDS) if (!isInt(e[k])) invalid(`${k} must be an integer`);
  need((e['time'] as number) > 0, 'time must be epoch milliseconds');
  need(e['class_uid'] === (e['category_uid'] as number) * 1000 + ((e['class_uid'] as number) % 1000), 'class_uid does not match category_uid');
  need(e['type_uid'] === (e['class_uid'] as number) * 100 + (e['activity_id'] as number), 'type_uid is not class_uid * 100 + activity_id');
  need(e['action_id'] === 1 || e['action_id'] === 2, 'action_id must be 1 (Allowed) or 2 (Denied)');
  need(e['disposition_id'] === e['action_id'], 'action and disposition disagree');
  need(isStr(e['status_detail']) && isReason(e['status_detail'] as string), 'status_detail must be a Gatehouse reason code');
  const m = e['metadata'];
  need(isObj(m), 'metadata is required');
  if ((m as Obj)['version'] !== OCSF_VERSION) invalid(`metadata.version must be ${OCSF_VERSION}`);
  const product = (m as Obj)['product'];
  need(isObj(product) && isStr((product as Obj)['name']) && isStr((product as Obj)['vendor_name']), 'metadata.product needs name and vendor_name');
  const severity = e['severity_id'] as number;
  need(e['action_id'] === 1 ? severity === 1 : severity >= 2 && severity <= 6, 'severity_id must be 1 (Informational) when allowed and 2-6 when denied');
  need(isStr((m as Obj)['uid']), 'metadata.uid is required');
  need(isObj(e['policy']) && POLICY_VERSION.test(String((e['policy'] as Obj)['version'])), 'policy.version must be the policy content hash');
  const u = e['unmapped'];
  need(isObj(u) && isObj((u as Obj)['gatehouse']), 'unmapped.gatehouse is required');
  const classCheck = CLASS_CHECKS[e['class_uid'] as number];
  if (classCheck === undefined) return invalid(`class ${String(e['class_uid'])} is not one Gatehouse emits`);
  classCheck(e);
}

/** Throws GH_ERR_AUDIT_INVALID_EVENT naming the problem. An invalid event is a Gatehouse bug. */
export function validateEvent(event: Record<string, unknown>): void {
  try {
    check(event);
  } catch (err) {
    if (err instanceof Invalid) throw new GatehouseError('GH_ERR_AUDIT_INVALID_EVENT', { detail: err.message });
    throw err;
  }
}
