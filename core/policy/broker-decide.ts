import type { BrokerGrant, MountMode } from '../tokens/issue-broker.js';
import { checkFilePath, checkLogicalPath, PathError, resolveMount, type Resolved } from './broker-path.js';
import type { TenantBrokerSettings, UpstreamSettings } from './compile-broker.js';

/**
 * The broker's access decisions, pure: what a token may do now (its grant narrowed to the tenant's ceiling), which
 * mount a path falls under and whether the operation may use it, whether an upstream is granted. The broker calls
 * these on every request and `gatehouse policy explain`/`test` call the very same functions, so the two cannot
 * drift.
 */

export type BrokerDecisionReason = 'allowed' | 'path_invalid' | 'mount_not_granted' | 'mount_read_only' | 'upstream_not_granted';

/** A file operation as the policy sees it. `read` covers GET, HEAD and stat; a move is a `write` at both ends. */
export type FileOp = 'read' | 'write' | 'delete' | 'list';

/** What each operation needs: a file path or a listing prefix, and a readable or writable mount. */
export const FILE_OPS: Readonly<Record<FileOp, { readonly kind: 'file' | 'prefix'; readonly need: 'read' | 'write' }>> = {
  read: { kind: 'file', need: 'read' },
  write: { kind: 'file', need: 'write' },
  // SECURITY: deleting destroys data as surely as overwriting it, so it needs rw like a write.
  delete: { kind: 'file', need: 'write' },
  list: { kind: 'prefix', need: 'read' },
};

export type FileDecision =
  | { readonly allow: true; readonly reason: 'allowed'; readonly resolved: Resolved }
  | { readonly allow: false; readonly reason: 'path_invalid' | 'mount_not_granted' | 'mount_read_only'; readonly detail: string; readonly mount?: string };

export type UpstreamDecision =
  | { readonly allow: true; readonly reason: 'allowed'; readonly upstream: UpstreamSettings }
  | { readonly allow: false; readonly reason: 'upstream_not_granted'; readonly detail: string };

/**
 * A token's grant intersected with the tenant's ceiling as the policy now stands (a reload applies to live
 * tokens): mounts the ceiling no longer lists are dropped, `rw` stays `rw` only while the ceiling says `rw`,
 * upstreams the ceiling no longer lists are dropped.
 */
export function narrowBrokerGrant(grant: BrokerGrant, ceiling: TenantBrokerSettings): BrokerGrant {
  const mounts: Record<string, MountMode> = {};
  for (const [path, mode] of Object.entries(grant.mounts)) {
    const allowed = ceiling.mounts.get(path);
    if (allowed) mounts[path] = mode === 'rw' && allowed.mode === 'rw' ? 'rw' : 'ro';
  }
  return { fs: grant.fs, mounts, upstreams: grant.upstreams.filter((u) => ceiling.upstreams.has(u)) };
}

/** The grant a session would get with no narrower request: every mount and upstream of the ceiling. */
export const ceilingGrant = (ceiling: TenantBrokerSettings, fs = 'explain'): BrokerGrant => ({
  fs,
  mounts: Object.fromEntries([...ceiling.mounts.values()].map((m) => [m.path, m.mode])),
  upstreams: [...ceiling.upstreams].sort(),
});

/**
 * Whether a (narrowed) grant lets `need` use the path, already decoded and checked as a logical path: a file path
 * must name something below a granted mount and not end in `/`; a listing prefix may be the mount itself.
 */
export function decideFileAccess(grant: BrokerGrant, path: string, kind: 'file' | 'prefix', need: 'read' | 'write'): FileDecision {
  if (kind === 'file') {
    try {
      checkFilePath(path);
    } catch (err) {
      if (err instanceof PathError) return { allow: false, reason: 'path_invalid', detail: err.detail };
      throw err;
    }
  }
  const resolved = resolveMount(grant, path, kind);
  if (!resolved) return { allow: false, reason: 'mount_not_granted', detail: `${path} is not under a mount this session may use` };
  if (need === 'write' && resolved.mode !== 'rw') return { allow: false, reason: 'mount_read_only', detail: `${resolved.mount} is read-only for this session`, mount: resolved.mount };
  return { allow: true, reason: 'allowed', resolved };
}

/**
 * A file operation on a logical path as written in a JSON body or a query (not percent-encoded): the path rules
 * first (`path_invalid`), then the mount. What `policy explain --file` and policy tests decide.
 */
export function decideFileOp(grant: BrokerGrant, path: string, op: FileOp): FileDecision {
  let checked: string;
  try {
    checked = checkLogicalPath(path.normalize('NFC'));
  } catch (err) {
    if (err instanceof PathError) return { allow: false, reason: 'path_invalid', detail: err.detail };
    throw err;
  }
  const { kind, need } = FILE_OPS[op];
  return decideFileAccess(grant, checked, kind, need);
}

/** Whether a (narrowed) grant lets the session call an upstream the policy defines. */
export function decideUpstream(upstreams: ReadonlyMap<string, UpstreamSettings>, grant: BrokerGrant, name: string): UpstreamDecision {
  const upstream = upstreams.get(name);
  if (!upstream || !grant.upstreams.includes(name)) return { allow: false, reason: 'upstream_not_granted', detail: `upstream ${name} is not granted to this session` };
  return { allow: true, reason: 'allowed', upstream };
}
