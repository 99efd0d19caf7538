/**
 * The policy `gatehouse up` writes on first run when no --policy is given. It is meant to be read and edited:
 * every section says what it does and what absent means.
 */
export function defaultPolicyText(schemaUrl: string): string {
  return `# yaml-language-server: $schema=${schemaUrl}
#
# Gatehouse policy. Gatehouse watches this file: a valid change applies to new connections within a second; an
# invalid one is rejected (the last good policy stays) and the audit log and the log say why.
# Reference: docs/reference/policy.md. Check a change before it ships: gatehouse policy lint FILE
version: 1

tokens:
  # Longest lifetime a session token may have (hard limit 24h). Sessions are meant to be short.
  max_ttl: 15m
  default_ttl: 10m

egress:
  # enforce: refuse what the rules deny. report: let it through and audit enforce_would_deny (for rollouts).
  mode: enforce

  # Deny rules for every tenant, checked first; a match refuses the destination even if a grant allows it.
  deny:
    - "*.pastebin.com"

  # Every private, loopback, link-local, metadata and other non-public address is refused after resolution.
  # An exception lets one named host reach one narrow range. Leave this empty unless you must.
  unsafe_allow_private: []

  limits:
    per_session:
      max_connections: 256
      new_connections_per_second: 50

broker:
  # Files live in a local store under the state directory until you add an S3 store here. Upstream APIs (model
  # providers) are added here with their credential as env:NAME or file:PATH, never inline.
  stores:
    - name: files
      type: local
  upstreams: []

tenants:
  # A tenant's egress.allow is its ceiling: a session token may be granted only destinations inside it, and a
  # request must match both the token's grant and the ceiling. A rule without a port means ports 80 and 443.
  - name: default
    egress:
      allow:
        - example.com
        - "*.example.com"
        - api.anthropic.com:443
        - api.openai.com:443
        - pypi.org:443
        - files.pythonhosted.org:443
        - registry.npmjs.org:443
        - github.com:443
        - codeload.github.com:443
    # The broker ceiling: the mounts (and upstreams) a session's broker token may be given.
    broker:
      store: files
      mounts:
        - {path: /inputs, mode: ro}
        - {path: /outputs, mode: rw}
        - {path: /tool-results, mode: rw}
`;
}
