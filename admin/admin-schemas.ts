/** JSON Schemas for admin API bodies. Unknown keys are refused (additionalProperties: false, nothing stripped). */
export function createSessionRoutesSchemas() {
  return {
    createSession: {
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['tenant'],
        // A session gets an egress token, a broker token, or both (sharing the session id, so one revocation covers both).
        anyOf: [{ required: ['egress'] }, { required: ['broker'] }],
        properties: {
          tenant: { type: 'string', minLength: 1, maxLength: 63 },
          session: { type: 'string', minLength: 1, maxLength: 128 },
          egress: { type: 'array', minItems: 1, maxItems: 1000, items: { type: 'string', minLength: 1, maxLength: 300 } },
          broker: {
            type: 'object',
            additionalProperties: false,
            required: ['filesystem'],
            properties: {
              filesystem: { type: 'string', minLength: 1, maxLength: 64 },
              mounts: { type: 'object', maxProperties: 64, additionalProperties: { type: 'string', enum: ['ro', 'rw'] } },
              upstreams: { type: 'array', maxItems: 64, items: { type: 'string', minLength: 1, maxLength: 63 } },
            },
          },
          ttl: { type: 'string', minLength: 2, maxLength: 16 },
        },
      },
    },
    revokeSession: {
      params: { type: 'object', required: ['id'], properties: { id: { type: 'string', pattern: '^[A-Za-z0-9._:-]{1,128}$' } } },
      body: {
        anyOf: [
          { type: 'null' },
          { type: 'object', additionalProperties: false, properties: { reason: { type: 'string', maxLength: 500 } } },
        ],
      },
    },
  } as const;
}
