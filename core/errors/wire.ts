import { isGatehouseError } from './gatehouse-error.js';

/** What a client sees: a stable code, a message written for it, and the correlation id. Never a stack or a path. */
export interface WireError {
  readonly error: {
    readonly code: string;
    readonly message: string;
    readonly correlation_id: string;
    readonly details?: readonly unknown[];
  };
}

/**
 * Turn any thrown value into a wire error. Only GatehouseError messages are shown (their templates are ours and
 * their params are names and ids); anything else becomes GH_ERR_INTERNAL so an unexpected library message, which
 * may carry a path or a value, never reaches the client.
 */
export function toWireError(err: unknown, correlationId: string): { status: number; body: WireError } {
  if (isGatehouseError(err)) {
    const body: WireError = {
      error: {
        code: err.code,
        message: err.message,
        correlation_id: correlationId,
        ...(err.details.length > 0 ? { details: err.details } : {}),
      },
    };
    return { status: err.status >= 400 && err.status < 600 ? err.status : 500, body };
  }
  return {
    status: 500,
    body: { error: { code: 'GH_ERR_INTERNAL', message: 'Internal error.', correlation_id: correlationId } },
  };
}
