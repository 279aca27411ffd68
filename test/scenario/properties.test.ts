import { describe, expect, it } from 'vitest';
import { PROPERTIES as CHECKED } from '../../src/check/violation.js';
import { PROPERTIES as EXPECTABLE } from '../../src/scenario/expect.js';

// The layers keep scenario and check apart (neither may import the other), so each holds the
// list; this keeps an `expect:` from naming a property no checker reports, or missing one.
describe('property names', () => {
  it('are the same for scenario `expect:` and the checkers', () => {
    expect([...EXPECTABLE]).toEqual([...CHECKED]);
  });
});
