/**
 * Every problem code the policy loader reports, with what it means. Lint adds its own per section
 * (tools/sections.ts). `gatehouse policy lint --list` prints both; docs/reference/policy.md lists both, and a
 * test keeps the three in step.
 */
export const LOAD_PROBLEM_CODES = {
  'unknown-key': 'A key the schema does not define (a typo, or a key from another version). The hint names the nearest known key.',
  'missing-key': 'A required key is absent.',
  'wrong-type': 'A value of the wrong type (a string where a number belongs, ...).',
  'invalid-value': 'A value outside its allowed set or format (mode, duration, tenant name, version).',
  'out-of-range': 'A number or list length outside its bounds.',
  'invalid-host': 'A destination pattern or exception host that is not a host name, address or CIDR; or a wildcard not in leading position.',
  'invalid-ports': 'Ports outside 1-65535, a bad range, or ports given twice (":ports" and a ports list).',
  'over-broad': 'A grant that matches half the internet: *, *.com, *.co.uk (public suffix list), a CIDR wider than /8 (IPv4) or /16 (IPv6), or an exception wider than that.',
  'invalid-cidr': 'An exception range that is not a CIDR, or has host bits set.',
  'invalid-address': 'A resolver server or fixed answer that is not an IP address.',
  'duplicate-tenant': 'Two tenants with the same name.',
  'ttl-too-long': 'max_ttl above the 24h hard limit, or default_ttl above max_ttl.',
  'mode-not-applicable': 'A per-rule mode on an allow rule (mode applies to deny rules; report mode for a ceiling is set on the tenant).',
  'unsafe-exception': 'Warning: an unsafe_allow_private exception without a reason. State why it exists (reason:), so reviewers can judge it.',
  'yaml-syntax': 'The file is not valid YAML.',
  'yaml-tab': 'A tab used for indentation (YAML forbids it).',
  'yaml-tag': 'A YAML tag (!!binary, !custom): tags change how values are read and are not allowed.',
  'yaml-too-complex': 'Aliases that expand beyond the bound (billion laughs) or nesting too deep to read safely.',
  'yaml-multiple-documents': 'More than one YAML document in the file.',
  'duplicate-key': 'The same key twice in one mapping.',
  'not-a-mapping': 'The file is YAML but not a mapping (a list, a scalar).',
  'policy-too-large': 'The file is larger than 1 MiB.',
  unreadable: 'The file cannot be read.',
  'duplicate-sink': 'Two audit sinks with the same name (names key their cursors and metrics).',
  'plaintext-sink': 'Warning: an audit sink reached over plain http outside loopback, so events and its credential travel in clear.',
  'duplicate-store': 'Two broker stores with the same name.',
  'duplicate-upstream': 'Two broker upstreams with the same name.',
  'duplicate-mount': 'The same mount path twice in one tenant.',
  'unknown-store': "A tenant's broker.store that broker.stores does not define.",
  'unknown-upstream': "A tenant's broker.upstreams entry that broker.upstreams does not define.",
  'plaintext-upstream': 'A broker store or upstream reached over plain http outside loopback: its credential and data would travel in clear.',
  'invalid-url': 'A URL with parts it may not have (a path on an S3 endpoint, a query or user info on an upstream) or a scheme other than http(s).',
} as const;
