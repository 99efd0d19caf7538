import { diffBroker } from './broker-diff.js';
import { BROKER_LINT_CODES, lintBroker } from './broker-lint.js';
import { diffAudit, diffEgress, diffTokens } from './egress-diff.js';
import { EGRESS_LINT_CODES, lintEgress } from './egress-lint.js';
import { lintSecrets, SECRETS_LINT_CODES } from './secrets-lint.js';
import type { PolicySection } from './section.js';

/**
 * Every policy section the tools know. A new section (broker, MCP tools) adds an entry here and `lint`,
 * `diff` and `lint --list` cover it with no other change.
 */
export const SECTIONS: readonly PolicySection[] = [
  { name: 'tokens', lintCodes: {}, lint: () => [], diff: diffTokens },
  { name: 'egress', lintCodes: EGRESS_LINT_CODES, lint: lintEgress, diff: diffEgress },
  { name: 'broker', lintCodes: BROKER_LINT_CODES, lint: lintBroker, diff: diffBroker },
  { name: 'audit', lintCodes: {}, lint: () => [], diff: diffAudit },
  { name: 'secrets', lintCodes: SECRETS_LINT_CODES, lint: lintSecrets, diff: () => [] },
];
