export const USAGE = `gatehouse: egress proxy and credential broker for AI-agent sandboxes

Usage:
  gatehouse up [--state DIR] [--policy FILE] [--egress-listen IP:PORT] [--admin-listen IP:PORT]
               [--broker-listen IP:PORT|unix:/PATH]
               [--log-level LEVEL] [--drain-timeout 10s] [--issuer NAME]
      Run every component in one process. First run creates the state directory (mode 0700) with the
      signing key, admin token, revocation list and audit log, and a default policy if --policy is not given.

  gatehouse token issue --tenant T --allow HOST[:PORT] [--allow ...] [--session S] [--ttl 10m] [--json]
      Print an egress session token, refusing destinations outside the tenant's ceiling and TTLs above the
      policy maximum. Signs with the key in --state; needs no running server.

  gatehouse token issue --tenant T --filesystem FS [--mount /PATH[:ro|rw]]... [--upstream NAME]...
                        [--session S] [--ttl 10m] [--json]
      Print a broker token for filesystem FS: mounts and upstreams inside the tenant's broker ceiling
      (absent: the whole ceiling). Use the same --session as the egress token so one revoke covers both.

  gatehouse token revoke --session S [--reason TEXT] [--admin-url URL]
      Revoke a session through the running admin API: new connections are refused and live ones cut at once.

  gatehouse keys rotate [--admin-url URL]
      Start signing with a new key; tokens signed by the old key stay valid until they expire.

  gatehouse audit verify [DIR] [--json]
      Check every audit hash chain and signed checkpoint; exit 1 naming the first edited, deleted, inserted,
      reordered or truncated record.

  gatehouse audit tail [DIR] [-n 20] [--follow] [FILTERS] [--json]
      The last N events (oldest first) as a table, or with --json as the log's own lines; --follow keeps
      printing new ones until interrupted.

  gatehouse audit query [DIR] [FILTERS] [--limit N] [--json]
      Every matching event in time order. FILTERS: --session S, --tenant T, --decision allow|deny,
      --reason CODE (repeatable), --source egress|control|... (repeatable), --since/--until TIME, where
      TIME is RFC 3339 (2026-11-26T09:00:00Z) or a duration ago (15m, 2h, 7d).

  gatehouse audit sinks [--admin-url URL] [--json]
      Each SIEM sink's state, lag, delivered and error counts from the running Gatehouse (exit 1 while any is
      failing); when it is not running, each sink's undelivered records from the cursor files.

  gatehouse policy lint FILE... [--format text|json] [--strict] [--list]
      Every problem in each policy as file:line:col: severity code message. Exit 0 clean (warnings allowed
      unless --strict), 1 errors, 2 usage. --list prints every lint code and what it means.

  gatehouse policy explain --policy FILE (--tenant T [--grant PATTERN]... | --token JWT) DESTINATION
                           [--address IP]... [--format text|json]
      The decision the proxy would make for DESTINATION (host:port, host or URL), its reason code and the rule
      (with file:line) that decided. --address says what the name resolves to, to run the address guard too.
  gatehouse policy explain --policy FILE (--tenant T [--mount /PATH[:ro|rw]]... [--grant-upstream NAME]... | --token JWT)
                           (--file /MOUNT/PATH [--op read|write|delete|list] | --upstream NAME) [--format text|json]
      The broker's decision for a file operation or an upstream call, its reason code and the ceiling entry
      (tenants[T].broker.mounts[i] or .upstreams[i], with file:line) that decided. No grant: the whole ceiling.

  gatehouse policy test [DIR|FILE]... [--format text|json|junit]
      Run policy test files (*.test.yaml): cases of tenant, grant and destination (or broker file or upstream)
      with the expected decision. Exit 1 when any case fails.

  gatehouse policy diff OLD NEW [--format text|json]
      What changes in effect: per tenant, destinations newly allowed or denied, broker mounts, writes and
      upstreams granted or withdrawn, stores; limits, exceptions, TTLs, broker stores and upstreams.
      Exit 0 no change, 1 changes.

  gatehouse policy schema [--tests]
      Print the policy JSON Schema (policies/schema.json), or with --tests the test-file schema
      (policies/test-schema.json).

Settings (flag > environment > default); each command accepts only the flags shown for it above:
  --state DIR          GATEHOUSE_STATE          ./.gatehouse
  --policy FILE        GATEHOUSE_POLICY         <state>/policy.yaml
  --egress-listen      GATEHOUSE_EGRESS_LISTEN  127.0.0.1:3128
  --admin-listen       GATEHOUSE_ADMIN_LISTEN   127.0.0.1:8181
  --broker-listen      GATEHOUSE_BROKER_LISTEN  127.0.0.1:9112 (or unix:/path/to/socket)
  --admin-url          GATEHOUSE_ADMIN_URL      http://<admin-listen>
                       GATEHOUSE_ADMIN_TOKEN    <state>/admin-token
  --log-level          GATEHOUSE_LOG_LEVEL      info
  --drain-timeout      GATEHOUSE_DRAIN_TIMEOUT  10s
  --issuer             GATEHOUSE_ISSUER         gatehouse

Docs: docs/README.md`;
