/**
 * Extract the session token from `Proxy-Authorization` (RFC 9110 §11.7.1). Two schemes:
 *   Basic base64(<any user>:<token>)   what curl, pip, npm, git, undici ProxyAgent and Python send for
 *                                      HTTPS_PROXY=http://gatehouse:$TOKEN@host:3128
 *   Bearer <token>
 * Returns null when the header is absent or not one of these shapes.
 */
export function tokenFromProxyAuthorization(header: string | undefined): string | null {
  if (header === undefined) return null;
  const space = header.indexOf(' ');
  if (space === -1) return null;
  const scheme = header.slice(0, space).toLowerCase();
  const value = header.slice(space + 1).trim();
  if (value.length === 0 || value.length > 12_000) return null;
  if (scheme === 'bearer') return value;
  if (scheme !== 'basic') return null;
  // RFC 7617: base64 of user-id ":" password; the token is the password. User-ids cannot contain ":".
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(value)) return null;
  const decoded = Buffer.from(value, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon === -1) return null;
  let token = decoded.slice(colon + 1);
  // Clients put the URL's userinfo here still percent-encoded in some versions; a JWT never contains "%".
  if (token.includes('%')) {
    try {
      token = decodeURIComponent(token);
    } catch {
      return null;
    }
  }
  return token.length > 0 ? token : null;
}
