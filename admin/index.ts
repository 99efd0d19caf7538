export { createAdminApi, type AdminApi, type AdminApiOptions, type LiveSession } from './admin-api.js';
export { SessionRegistry, type SessionRecord } from './session-registry.js';
