// Lint in the style of the Fastify ecosystem: neostandard (standard's rules, flat config, TypeScript).
import neostandard from 'neostandard'

export default [
  ...neostandard({
    ts: true,
    ignores: ['**/dist/**', '**/node_modules/**', 'coverage/**', '.tap/**', 'data/**', 'tmp/**', '**/*.d.ts']
  }),
  {
    rules: {
      // `void promise` marks a promise deliberately not awaited (its errors are handled inside).
      'no-void': ['error', { allowAsStatement: true }],
      // TypeBox's idiom pairs a schema value with its type under one name
      // (`const Logo = Type.Object(…); type Logo = Static<typeof Logo>`); tsc catches real clashes.
      '@typescript-eslint/no-redeclare': 'off'
    }
  }
]
