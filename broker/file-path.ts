// The path rules themselves are pure policy logic, shared with `gatehouse policy explain`: they live in core/.
export { checkFilePath, checkLogicalPath, decodeLogicalPath, MAX_PATH_BYTES, MAX_SEGMENT_BYTES, PathError, resolveMount, type Resolved } from '../core/policy/broker-path.js';

/**
 * The physical key for a logical path: `<store prefix><tenant>/<filesystem>` + path. Both parts come from the
 * signed token, so a token cannot even spell another tenant's or filesystem's key.
 */
export const physicalKey = (storePrefix: string, tenant: string, fs: string, path: string): string => `${storePrefix}${tenant}/${fs}${path}`;
