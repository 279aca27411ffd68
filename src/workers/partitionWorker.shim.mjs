// Under vitest the sources are TypeScript: this shim loads the worker through tsx so that the
// tests drive the same worker code the compiled CLI runs (dist/workers/partitionWorker.js).
import { tsImport } from 'tsx/esm/api';

const mod = await tsImport('./partitionWorker.ts', import.meta.url);
export default mod.default;
