export { Keystore, TOKEN_ALG, type PublicJwk } from './keystore.js';
export * from './session-token.js';
export { CachedVerifier, type Verified } from './cached-verifier.js';
export { RevocationList, type Revocation } from './revocations.js';
export { issueEgressToken, newSessionId, type EgressIssueRequest, type EgressIssueResult } from './issue-egress.js';
export { checkBrokerGrant, FILESYSTEM_ID, issueBrokerToken, parseMountArg, type BrokerGrant, type BrokerIssueRequest, type BrokerIssueResult, type MountMode } from './issue-broker.js';
