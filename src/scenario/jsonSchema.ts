import { z } from 'zod';
import { ScenarioSchema } from './schema.js';

/** Where the generated schema is kept, relative to the repository root. */
export const JSON_SCHEMA_PATH = 'scenarios/schema/scenario.schema.json';

/**
 * The scenario file's JSON Schema, for editors (a YAML language server completes keys and checks
 * values with it). It describes the *input* side — what a user writes: keys optional where they
 * have defaults, times as strings or integers — not the resolved {@link Scenario}. Checks that
 * need code (consistent topology, existing pins, syncpoints) are not expressible there; `rapsim run`
 * still makes them.
 *
 * @example
 * // in a scenario file, first line:
 * // # yaml-language-server: $schema=./schema/scenario.schema.json
 * JSON.stringify(scenarioJsonSchema(), null, 2)
 */
export function scenarioJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(ScenarioSchema, {
    io: 'input',
    target: 'draft-2020-12',
    unrepresentable: 'any',
  });
  // Editors (and the YAML language server) accept `$schema` comments on files; an $id lets them cache it.
  return { ...schema, $id: 'https://rapsim.invalid/scenario.schema.json' };
}
