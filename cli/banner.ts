import { join } from 'node:path';
import { cliCommand } from './package-paths.js';

const url = (a: { host: string; port: number }): string => `http://${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`;

/** What `gatehouse up` prints on stdout: what listens where, and a copy-paste first session. */
export function banner(input: { egress: { host: string; port: number }; admin: { host: string; port: number }; broker: { host: string; port: number } | { socket: string }; stateDir: string; policyFile: string; policyVersion: string; tenant: string }): string {
  const cli = cliCommand();
  const adminToken = join(input.stateDir, 'admin-token');
  const state = input.stateDir.includes(' ') ? `"${input.stateDir}"` : input.stateDir;
  return `Gatehouse is running.
  egress proxy  ${url(input.egress)}
  admin API     ${url(input.admin)}   (token: ${adminToken})
  broker        ${'socket' in input.broker ? `unix:${input.broker.socket}` : url(input.broker)}
  policy        ${input.policyFile}   (${input.policyVersion}, watched for changes)
  state         ${input.stateDir}
  audit log     ${join(input.stateDir, 'audit')}

Try it: issue a 10-minute token for one destination, then use it as the proxy password.
  TOKEN=$(${cli} token issue --state ${state} --tenant ${input.tenant} --session demo --allow example.com)
  curl -x "http://gatehouse:$TOKEN@${input.egress.host}:${input.egress.port}" https://example.com/

Or create the session through the admin API:
  curl -s -H "Authorization: Bearer $(cat ${adminToken})" -H 'content-type: application/json' \\
       -d '{"tenant":${JSON.stringify(input.tenant)},"egress":["example.com"]}' ${url(input.admin)}/v1/sessions

Files for the sandbox go through the broker with a broker token (no real credential in the sandbox):
  BTOKEN=$(${cli} token issue --state ${state} --tenant ${input.tenant} --session demo --filesystem demo-fs --mount /outputs:rw)
  curl -s -H "Authorization: Bearer $BTOKEN" -T notes.txt ${'socket' in input.broker ? `--unix-socket ${input.broker.socket} http://broker` : url(input.broker)}/v1/files/outputs/notes.txt

Revoke it (live tunnels close at once):  ${cli} token revoke --state ${state} --session demo
Stop with Ctrl-C.
`;
}
