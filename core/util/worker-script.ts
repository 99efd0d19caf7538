import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The compiled JavaScript file for a worker thread, given the URL of the module that spawns it and the
 * worker's path relative to the repository root (`core/audit/writer-worker.js`).
 *
 * Node 20 cannot run TypeScript in a worker, so when the caller runs from source (tests) this points at the
 * build output, and refuses a build that is older than its source rather than silently testing stale code.
 */
export function workerScript(callerUrl: string, fromRoot: string): string {
  const caller = fileURLToPath(callerUrl);
  const fromDist = caller.includes(`${join('dist', '')}`) || caller.endsWith('.js');
  if (fromDist) {
    const root = caller.slice(0, caller.lastIndexOf(join('dist', '')) + 'dist'.length);
    return join(root, fromRoot);
  }
  // Running from source: <root>/core/... -> <root>/dist/core/...
  let root = dirname(caller);
  while (!existsSync(join(root, 'package.json')) && dirname(root) !== root) root = dirname(root);
  const script = join(root, 'dist', fromRoot);
  if (!existsSync(script)) throw new Error(`${relative(root, script)} is missing: run "npm run build" (npm test does)`);
  // A worker imports much of core/: any source newer than the build means the build is stale.
  const newest = newestSource(join(root, fromRoot.split('/')[0] as string));
  if (newest && newest.mtimeMs > statSync(script).mtimeMs) {
    throw new Error(`${relative(root, script)} is older than ${relative(root, newest.file)}: run "npm run build" (npm test does)`);
  }
  return script;
}

function newestSource(dir: string): { file: string; mtimeMs: number } | null {
  let best: { file: string; mtimeMs: number } | null = null;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      const inner = newestSource(path);
      if (inner && (!best || inner.mtimeMs > best.mtimeMs)) best = inner;
    } else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts')) {
      const mtimeMs = statSync(path).mtimeMs;
      if (!best || mtimeMs > best.mtimeMs) best = { file: path, mtimeMs };
    }
  }
  return best;
}
