// Under vitest the sources are TypeScript: this shim loads the sweep worker through tsx so that
// the tests drive the same worker code the compiled CLI runs (dist/sweep/sweepWorker.js).
import { tsImport } from 'tsx/esm/api';

const mod = await tsImport('./sweepWorker.ts', import.meta.url);
export default mod.default;
