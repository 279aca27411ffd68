import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { ScenarioError } from './errors.js';
import { checkSchemaPath } from './schemaPath.js';

/** One `--set key=value`, read. */
export interface Override {
  /** The dotted key, split: `vms.0.vcpus` → ['vms', '0', 'vcpus']. */
  path: string[];
  /** The value, read as YAML. */
  value: unknown;
  /** The argument as the user gave it, for messages. */
  arg: string;
}

/**
 * Reads `key=value`. The value is read as YAML, so `8` is a number, `true` a boolean, `3us` a
 * string, and a flow list `[0, 1]` a list; text that is not valid YAML, or that YAML would read as
 * a block mapping (`a: b`), stays a plain string, which is what a shell user meant.
 *
 * @throws ScenarioError (file `--set`) when there is no `=` or no key
 * @example
 * parseOverride('vms.0.vcpus=8') // { path: ['vms', '0', 'vcpus'], value: 8, arg: 'vms.0.vcpus=8' }
 */
export function parseOverride(arg: string): Override {
  const eq = arg.indexOf('=');
  const key = eq < 0 ? '' : arg.slice(0, eq).trim();
  const path = key.split('.');
  if (!key || path.some((segment) => segment === '')) {
    throw new ScenarioError({
      file: '--set',
      path: '',
      expected: 'key=value with a dotted key',
      found: JSON.stringify(arg),
    });
  }
  return { path, value: readValue(arg.slice(eq + 1)), arg };
}

function readValue(text: string): unknown {
  if (text.trim() === '') return '';
  const doc = parseDocument(text);
  if (doc.errors.length > 0) return text;
  const value: unknown = doc.toJS();
  const flow = /^\s*[[{]/.test(text);
  return value !== null && typeof value === 'object' && !flow ? text : value;
}

/**
 * Applies overrides, in order, to a copy of the parsed file. Each key must name a field of the
 * schema (else: "unknown key", with the keys allowed there), and a list index must exist: `--set`
 * changes a scenario, it does not invent VMs. Missing mappings on the way are created.
 *
 * @param schema the schema whose input shape the keys address
 * @param file the scenario file, for messages
 * @throws ScenarioError naming the offending key and the `--set` argument
 * @example
 * applyOverrides(ScenarioSchema, { name: 'x' }, [parseOverride('host.policy=naive')], 'x.yaml')
 * // { name: 'x', host: { policy: 'naive' } }
 */
export function applyOverrides(
  schema: z.ZodType,
  input: unknown,
  overrides: readonly Override[],
  file: string,
): unknown {
  let root: unknown = structuredClone(input);
  for (const o of overrides) {
    const check = checkSchemaPath(schema, o.path);
    if (!check.ok) {
      throw new ScenarioError({
        file,
        path: o.path.slice(0, check.at + 1).join('.'),
        problem: `unknown key in --set ${o.arg}`,
        expected: check.expected,
      });
    }
    root = setAt(isContainer(root) ? root : {}, o, check.containers, file);
  }
  return root;
}

type Container = Record<string, unknown> | unknown[];

function isContainer(v: unknown): v is Container {
  return v !== null && typeof v === 'object';
}

function setAt(
  root: Container,
  o: Override,
  containers: readonly ('list' | 'mapping')[],
  file: string,
): Container {
  let node: Container = root;
  for (const [i, segment] of o.path.entries()) {
    const last = i === o.path.length - 1;
    if (Array.isArray(node)) {
      const index = Number(segment);
      if (index >= node.length) {
        throw new ScenarioError({
          file,
          path: o.path.slice(0, i + 1).join('.'),
          problem: `no such item for --set ${o.arg}`,
          expected:
            node.length === 0 ? 'an existing item (the list is empty)' : `an index in 0..${node.length - 1}`,
          found: segment,
        });
      }
      if (last) node[index] = o.value;
      else node = descend(node, index, containers[i + 1]);
    } else if (last) {
      node[segment] = o.value;
    } else {
      node = descend(node, segment, containers[i + 1]);
    }
  }
  return root;
}

/** The container under `key`, created as the schema's kind when absent or not a container. */
function descend(node: Container, key: string | number, kind: 'list' | 'mapping' | undefined): Container {
  const child = (node as Record<string | number, unknown>)[key];
  if (isContainer(child) && Array.isArray(child) === (kind === 'list')) return child;
  const created: Container = kind === 'list' ? [] : {};
  (node as Record<string | number, unknown>)[key] = created;
  return created;
}
