// A plain webpack 5 config: no loader, no plugin, no experiments. webpack
// emits tidings_bg.wasm as an asset on its own (the package loads it through
// `new URL('tidings_bg.wasm', import.meta.url)`).
import { fileURLToPath } from 'node:url';

export default {
  mode: 'production',
  entry: './src/index.js',
  output: { path: fileURLToPath(new URL('./dist', import.meta.url)), clean: true },
};
