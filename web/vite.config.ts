import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

/**
 * The viewer that `rapsim view` serves: a static page built into dist-web/ (by `npm run build`).
 * Relative asset URLs, so the server can mount it anywhere; nothing is fetched from elsewhere.
 */
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: './',
  logLevel: 'warn',
  build: {
    outDir: fileURLToPath(new URL('../dist-web', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: false,
    reportCompressedSize: false,
  },
});
