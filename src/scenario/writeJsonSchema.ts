/**
 * `npm run schema`: regenerates scenarios/schema/scenario.schema.json from the zod schema, so the
 * published JSON Schema can never drift from the one the loader enforces (a test compares them).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { JSON_SCHEMA_PATH, scenarioJsonSchema } from './jsonSchema.js';

mkdirSync(dirname(JSON_SCHEMA_PATH), { recursive: true });
writeFileSync(JSON_SCHEMA_PATH, `${JSON.stringify(scenarioJsonSchema(), null, 2)}\n`);
process.stdout.write(`wrote ${JSON_SCHEMA_PATH}\n`);
