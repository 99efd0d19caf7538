import { ERROR_CODES, type ErrorCode } from './codes.js';

export type ErrorParams = Readonly<Record<string, string | number>>;

/** Fill `{name}` placeholders; unknown placeholders stay visible so a missing param is noticed in review. */
export function formatMessage(template: string, params: ErrorParams): string {
  return template.replace(/\{(\w+)\}/g, (whole, name: string) =>
    Object.hasOwn(params, name) ? String(params[name]) : whole,
  );
}

/**
 * A local error: thrown inside Gatehouse, carrying a stable code. `details` may hold structured problems (for
 * example every policy error with its location); it is for people and machines, and never holds a secret.
 */
export class GatehouseError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly params: ErrorParams;
  readonly details: readonly unknown[];

  constructor(code: ErrorCode, params: ErrorParams = {}, options: { cause?: unknown; details?: readonly unknown[] } = {}) {
    const info = ERROR_CODES[code];
    super(formatMessage(info.message, params), options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'GatehouseError';
    this.code = code;
    this.status = info.status;
    this.params = params;
    this.details = options.details ?? [];
  }
}

export const isGatehouseError = (err: unknown): err is GatehouseError => err instanceof GatehouseError;
