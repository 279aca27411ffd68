import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { JSON_SCHEMA_PATH, scenarioJsonSchema } from '../../src/scenario/jsonSchema.js';

describe('published JSON Schema', () => {
  it('is up to date with the zod schema (run `npm run schema`)', () => {
    const committed = JSON.parse(readFileSync(JSON_SCHEMA_PATH, 'utf8'));
    expect(committed).toEqual(scenarioJsonSchema());
  });

  it('describes what users write: strict, defaults shown as written', () => {
    const schema = scenarioJsonSchema() as {
      additionalProperties: boolean;
      required: string[];
      properties: Record<string, { default?: unknown; additionalProperties?: boolean }>;
      $defs: Record<string, unknown>;
    };
    expect(schema.additionalProperties).toBe(false);
    expect(schema.required).toEqual(['name']);
    expect(schema.properties.until?.default).toBe('2ms');
    expect(schema.properties.hardware?.additionalProperties).toBe(false);
    expect(Object.keys(schema.$defs)).toEqual(expect.arrayContaining(['Vm', 'ScriptOp', 'Duration']));
  });
});
