import { createLogger } from '../core/log/logger.js';
import { banner, up } from './up.js';
import type { RuntimeConfig } from './runtime-config.js';

/**
 * `gatehouse up` in the foreground: start, print the banner, and on SIGINT/SIGTERM stop accepting, drain
 * within the bound, and exit 0. A second signal exits at once.
 */
export async function runUp(config: RuntimeConfig, out: (s: string) => void, err: (s: string) => void): Promise<number> {
  const logger = createLogger({ level: config.logLevel });
  const running = await up(config, logger);
  out(banner({ egress: running.egress, admin: running.admin, broker: running.broker, stateDir: config.stateDir, policyFile: running.policyFile, policyVersion: running.policyVersion(), tenant: running.exampleTenant() }));
  return new Promise<number>((resolve) => {
    let signals = 0;
    const onSignal = (signal: NodeJS.Signals): void => {
      signals++;
      if (signals > 1) {
        err(`gatehouse: second ${signal}, exiting without draining`);
        process.exit(1);
      }
      logger.info({ signal, drain_ms: config.drainTimeoutMs }, 'shutting down: no new connections, draining');
      running.stop().then(
        () => {
          logger.info('stopped');
          logger.flush();
          resolve(0);
        },
        (e: unknown) => {
          err(`gatehouse: shutdown failed: ${(e as Error).message}`);
          resolve(1);
        },
      );
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    // SIGHUP: re-read the policy now (the file is also watched; this is for filesystems that do not notify).
    process.on('SIGHUP', () => void running.reloadPolicy());
  });
}
