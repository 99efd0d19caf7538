/** JSON Schemas for admin API bodies. Unknown keys are refused (additionalProperties: false, nothing stripped). */
export function createSessionRoutesSchemas() {
  return {
    createSession: {
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['tenant', 'egress'],
        properties: {
          tenant: { type: 'string', minLength: 1, maxLength: 63 },
          session: { type: 'string', minLength: 1, maxLength: 128 },
          egress: { type: 'array', minItems: 1, maxItems: 1000, items: { type: 'string', minLength: 1, maxLength: 300 } },
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
