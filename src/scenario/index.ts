/**
 * The scenario layer: reading, validating and resolving scenario files (docs/interface.md).
 *
 * @example
 * import { loadScenario, ScenarioError } from '../scenario/index.js';
 * try {
 *   const scenario = loadScenario(file, { sets });
 * } catch (e) {
 *   if (e instanceof ScenarioError) { console.error(e.message); process.exitCode = e.exitCode; }
 * }
 */
export { ScenarioError, type ScenarioErrorDetails } from './errors.js';
export { PROPERTIES } from './expect.js';
export { defaultRapEntries, SPECS } from './hardware.js';
export { POLICIES } from './host.js';
export { JSON_SCHEMA_PATH, scenarioJsonSchema } from './jsonSchema.js';
export { LIMITS } from './limits.js';
export { type LoadOptions, loadScenario, parseScenarioText } from './load.js';
export { MSR_NAMES } from './msr.js';
export { type Override, parseOverride } from './overrides.js';
export { ScenarioSchema } from './schema.js';
export { CR0_BITS, CR4_BITS, SCRIPT_OP_KEYS, ScriptOpSchema } from './scriptOps.js';
export { parseSeedRange } from './sweep.js';
export { checkTopology } from './topology.js';
export type * from './types.js';
