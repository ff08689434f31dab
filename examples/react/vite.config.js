import { defineConfig } from 'vite';

// The API server (tidings-server --dev) to proxy to in `vite dev`.
const api = process.env.TIDINGS_API ?? 'http://127.0.0.1:8000';

export default defineConfig({
  // No @vitejs/plugin-react needed: esbuild compiles JSX with the automatic runtime.
  esbuild: { jsx: 'automatic' },
  // The wasm glue loads tidings_bg.wasm through new URL(..., import.meta.url): keep it out of pre-bundling.
  optimizeDeps: { exclude: ['tidings'] },
  server: { proxy: { '/api': api } },
});
