export const USAGE = `gatehouse: egress proxy and credential broker for AI-agent sandboxes

Usage:
  gatehouse up [--state DIR] [--policy FILE] [--egress-listen IP:PORT] [--admin-listen IP:PORT]
               [--log-level LEVEL] [--drain-timeout 10s]
      Run every component in one process. First run creates the state directory (mode 0700) with the
      signing key, admin token, revocation list and audit log, and a default policy if --policy is not given.

  gatehouse token issue --tenant T --allow HOST[:PORT] [--allow ...] [--session S] [--ttl 10m] [--json]
      Print an egress session token, refusing destinations outside the tenant's ceiling and TTLs above the
      policy maximum. Signs with the key in --state; needs no running server.

  gatehouse token revoke --session S [--reason TEXT]
      Revoke a session through the running admin API: new connections are refused and live ones cut at once.

  gatehouse keys rotate
      Start signing with a new key; tokens signed by the old key stay valid until they expire.

  gatehouse audit verify [DIR] [--json]
      Check every audit hash chain; exit 1 naming the first edited, deleted, inserted or reordered record.

Common flags (flag > environment > default):
  --state DIR          GATEHOUSE_STATE          ./.gatehouse
  --policy FILE        GATEHOUSE_POLICY         <state>/policy.yaml
  --egress-listen      GATEHOUSE_EGRESS_LISTEN  127.0.0.1:3128
  --admin-listen       GATEHOUSE_ADMIN_LISTEN   127.0.0.1:8181
  --admin-url          GATEHOUSE_ADMIN_URL      http://<admin-listen>
                       GATEHOUSE_ADMIN_TOKEN    <state>/admin-token
  --log-level          GATEHOUSE_LOG_LEVEL      info
  --drain-timeout      GATEHOUSE_DRAIN_TIMEOUT  10s
  --issuer             GATEHOUSE_ISSUER         gatehouse

Docs: docs/README.md`;
