// The demo gallery page: built into dist/web (served by plugins/web.ts at `/`).
// The SDK (packages/client) is taken from its sources, not its dist/, so `vite build` does not
// depend on tsc having run.
// JSX: Vite 8 transforms TSX with oxc, React's automatic runtime; no plugin needed.
import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vite'

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url))
const api = process.env.LOGO_SYNC_API ?? 'http://127.0.0.1:3000'

export default defineConfig({
  root: here('.'),
  base: '/',
  resolve: {
    alias: {
      'logo-sync/client': here('../packages/client/src/index.ts'),
      'logo-sync/react': here('../packages/client/src/react/index.ts')
    }
  },
  oxc: {
    jsx: { runtime: 'automatic', importSource: 'react' }
  },
  build: {
    outDir: here('../dist/web'),
    emptyOutDir: true,
    sourcemap: true,
    chunkSizeWarningLimit: 400
  },
  // `npx vite --config web/vite.config.ts` for working on the page against a running server.
  server: {
    proxy: {
      '/sync': { target: api.replace(/^http/, 'ws'), ws: true },
      '^/(logos|voting|me|auth)(/.*)?$': api
    }
  }
})
