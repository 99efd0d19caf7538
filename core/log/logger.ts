import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger } from 'pino';

/**
 * Structured JSON logs on stderr (stdout is for what a command prints). Secrets never reach a log call by
 * construction (only ids and reason codes are logged); the redaction list is a second line of defence.
 */
export function createLogger(options: { level?: string; destination?: DestinationStream } = {}): Logger {
  return pino(
    {
      level: options.level ?? 'info',
      base: { app: 'gatehouse' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: {
        paths: ['token', '*.token', 'authorization', '*.authorization', 'headers.authorization', 'headers["proxy-authorization"]', 'admin_token', '*.admin_token', 'secret', '*.secret'],
        censor: '[redacted]',
      },
    },
    options.destination ?? pino.destination({ fd: 2, sync: false }),
  );
}

/** A logger that drops everything (tests and library use). */
export const silentLogger = (): Logger => pino({ level: 'silent' });
