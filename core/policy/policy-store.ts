import { EventEmitter } from 'node:events';
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { GatehouseError } from '../errors/index.js';
import type { CompiledPolicy } from './compiled-policy.js';
import { compilePolicy, policyVersion } from './compile-policy.js';
import type { Problem } from './yaml-source.js';

export type ReloadTrigger = 'watch' | 'api' | 'signal' | 'start';

export type ReloadOutcome =
  | { readonly status: 'applied'; readonly previous: string; readonly current: string; readonly warnings: readonly Problem[] }
  | { readonly status: 'unchanged'; readonly current: string }
  | { readonly status: 'rejected'; readonly current: string; readonly attempted: string; readonly problems: readonly Problem[] };

interface StoreEvents {
  applied: [outcome: Extract<ReloadOutcome, { status: 'applied' }>, trigger: ReloadTrigger];
  rejected: [outcome: Extract<ReloadOutcome, { status: 'rejected' }>, trigger: ReloadTrigger];
}

async function readPolicyFile(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    throw new GatehouseError('GH_ERR_POLICY_READ', { detail: (err as NodeJS.ErrnoException).code ?? 'error' }, { cause: err });
  }
}

/**
 * Holds the current policy and swaps it atomically on reload. A reload that fails keeps the last good policy
 * and says why (`rejected`); nothing ever runs on a half-applied or default policy.
 *
 * Watching covers editors that replace the file (rename) and Kubernetes ConfigMap symlink swaps: the directory
 * is watched and any event in it triggers a re-read, which is cheap and ignored when the content is unchanged.
 */
export class PolicyStore extends EventEmitter<StoreEvents> {
  private policy: CompiledPolicy;
  private watcher: FSWatcher | null = null;
  private debounce: NodeJS.Timeout | null = null;
  private reloading: Promise<ReloadOutcome> | null = null;

  private constructor(
    readonly file: string,
    initial: CompiledPolicy,
  ) {
    super();
    this.policy = initial;
  }

  /** Load at start-up; an invalid policy is a GatehouseError listing every problem (the process must not start). */
  static async load(file: string): Promise<PolicyStore> {
    const text = await readPolicyFile(file);
    const { policy, problems } = compilePolicy(text, file);
    if (!policy) {
      const errors = problems.filter((p) => p.severity === 'error');
      throw new GatehouseError('GH_ERR_POLICY_INVALID', { count: errors.length }, { details: errors });
    }
    return new PolicyStore(file, policy);
  }

  /** Build a store from text (tests, embedded defaults). */
  static fromText(text: string, file: string): PolicyStore {
    const { policy, problems } = compilePolicy(text, file);
    if (!policy) {
      const errors = problems.filter((p) => p.severity === 'error');
      throw new GatehouseError('GH_ERR_POLICY_INVALID', { count: errors.length }, { details: errors });
    }
    return new PolicyStore(file, policy);
  }

  get current(): CompiledPolicy {
    return this.policy;
  }

  /** Re-read and apply the file. Concurrent calls share one reload. */
  reload(trigger: ReloadTrigger): Promise<ReloadOutcome> {
    this.reloading ??= this.doReload(trigger).finally(() => {
      this.reloading = null;
    });
    return this.reloading;
  }

  private async doReload(trigger: ReloadTrigger): Promise<ReloadOutcome> {
    const previous = this.policy.version;
    let text: string;
    try {
      text = await readPolicyFile(this.file);
    } catch {
      const outcome = {
        status: 'rejected' as const,
        current: previous,
        attempted: 'unreadable',
        problems: [{ file: this.file, line: 1, col: 1, severity: 'error' as const, code: 'unreadable', message: 'the policy file could not be read' }],
      };
      this.emit('rejected', outcome, trigger);
      return outcome;
    }
    const attempted = policyVersion(text);
    if (attempted === previous) return { status: 'unchanged', current: previous };
    const { policy, problems } = compilePolicy(text, this.file);
    if (!policy) {
      const outcome = { status: 'rejected' as const, current: previous, attempted, problems: problems.filter((p) => p.severity === 'error') };
      this.emit('rejected', outcome, trigger);
      return outcome;
    }
    this.policy = policy;
    const outcome = { status: 'applied' as const, previous, current: policy.version, warnings: policy.warnings };
    this.emit('applied', outcome, trigger);
    return outcome;
  }

  /** Watch the file; changes apply within about 100 ms of the last write. */
  watch(): void {
    if (this.watcher) return;
    const name = basename(this.file);
    this.watcher = watch(dirname(this.file), { persistent: false }, (_event, changed) => {
      // Any change in the directory may be a symlink swap that replaced our file; unrelated files are rare.
      if (changed !== null && changed !== name && !String(changed).startsWith('..')) return;
      if (this.debounce) clearTimeout(this.debounce);
      this.debounce = setTimeout(() => {
        this.debounce = null;
        void this.reload('watch');
      }, 100);
    });
    this.watcher.on('error', () => undefined);
  }

  close(): void {
    this.watcher?.close();
    this.watcher = null;
    if (this.debounce) clearTimeout(this.debounce);
  }
}
