// Lint: the type-aware basics, plus the component boundary rule from STYLE.md: a component imports core/ and
// itself, never another component (cli/ wires them together).
import tseslint from 'typescript-eslint';

const COMPONENTS = ['egress', 'broker', 'sds', 'gateway', 'sandbox', 'admin'];

const boundary = (component) => ({
  files: [`${component}/**/*.ts`],
  ignores: [`${component}/**/*.test.ts`],
  rules: {
    'no-restricted-imports': [
      'error',
      {
        patterns: COMPONENTS.filter((c) => c !== component).map((other) => ({
          group: [`../${other}/*`, `../../${other}/*`, `../${other}`, `../../${other}`],
          message: `${component}/ may import core/ and itself only; wire components together in cli/.`,
        })),
      },
    ],
  },
});

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', '.scratch/**'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-restricted-syntax': [
        'error',
        { selector: "CallExpression[callee.property.name='only'][callee.object.name=/^(it|describe|test)$/]", message: 'No focused tests.' },
        { selector: "CallExpression[callee.property.name='skip'][callee.object.name=/^(it|describe|test)$/]", message: 'No skipped tests.' },
      ],
    },
  },
  {
    files: ['core/**/*.ts'],
    ignores: ['core/**/*.test.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: COMPONENTS.flatMap((c) => [`../${c}/*`, `../../${c}/*`]), message: 'core/ must not depend on a component.' }] }],
    },
  },
  ...COMPONENTS.map(boundary),
);
