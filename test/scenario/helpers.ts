import { expect } from 'vitest';
import { ScenarioError } from '../../src/scenario/errors.js';
import { parseScenarioText } from '../../src/scenario/load.js';

/** Parses `text` as `x.yaml` and returns the ScenarioError it must raise. */
export function scenarioError(text: string, sets: string[] = []): ScenarioError {
  try {
    parseScenarioText(text, 'x.yaml', { sets });
  } catch (e) {
    expect(e).toBeInstanceOf(ScenarioError);
    const error = e as ScenarioError;
    // One paragraph, no stack, and always the file first.
    expect(error.message).not.toMatch(/\n|\s+at\s+\S+\s+\(/);
    expect(error.message.startsWith('x.yaml')).toBe(true);
    expect(error.exitCode).toBe(2);
    return error;
  }
  throw new Error(`expected a ScenarioError for:\n${text}`);
}

/** A scenario with one VM whose vCPU 0 runs `ops` (a YAML flow list). */
export function vmScript(ops: string, vm = 'vcpus: 4'): string {
  return `name: s\nvms:\n  - name: vm0\n    ${vm}\n    guest:\n      processes: 4\n      script:\n        0: ${ops}\n`;
}
