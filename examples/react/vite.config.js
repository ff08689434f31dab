import { defineConfig } from 'vite';

// The API server (tidings-server --dev) to proxy to in `vite dev`.
const api = process.env.TIDINGS_API ?? 'http://127.0.0.1:8000';

// Nothing for tidings: no optimizeDeps entry, no plugin (tests/e2e/react.test.mjs
// runs both `vite` and `vite build` this way). Vite 8 compiles JSX with the
// automatic runtime by itself, so no @vitejs/plugin-react either.
export default defineConfig({
  server: { proxy: { '/api': api } },
});
