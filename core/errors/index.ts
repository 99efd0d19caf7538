export { REASONS, isReason, type Reason, type ReasonInfo, type DeniedAddressReason } from './reasons.js';
export { ERROR_CODES, type ErrorCode, type ErrorCodeInfo } from './codes.js';
export { GatehouseError, isGatehouseError, formatMessage, type ErrorParams } from './gatehouse-error.js';
export { toWireError, type WireError } from './wire.js';
