/**
 * The egress section end-to-end policies start with: the name `origin.test` resolves to 127.0.0.1, where the
 * test's origin listens, and a narrow exception lets the proxy reach it there. Append more `egress` keys (two
 * spaces in) right after it, then the other sections.
 */
export const ORIGIN_EGRESS = `egress:
  unsafe_allow_private:
    - {host: origin.test, cidr: 127.0.0.1/32, reason: the test origin}
  resolver:
    hosts:
      origin.test: [127.0.0.1]
`;
