import { type Document, isAlias, isMap, isScalar, isSeq, LineCounter, type Node, parseDocument } from 'yaml';
import { ScenarioError } from './errors.js';

/** A parsed scenario file that can still answer "which line is this value on?". */
export interface YamlSource {
  file: string;
  doc: Document;
  lines: LineCounter;
}

/**
 * Parses YAML text into plain data, keeping the document for line numbers. Duplicate keys are
 * errors (a second `policy:` silently winning would hide a mistake), and so is anything else the
 * parser rejects.
 *
 * @throws ScenarioError with the file, line, column and the parser's reason
 * @example
 * parseYaml('name: x\n', 'x.yaml').value // { name: 'x' }
 */
export function parseYaml(text: string, file: string): { value: unknown; source: YamlSource } {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const [error] = doc.errors;
  if (error) {
    const { line, col } = lines.linePos(error.pos[0]);
    throw new ScenarioError({
      file,
      path: '',
      line,
      column: col,
      problem: `YAML syntax error: ${error.message}`,
      expected: '',
      more: doc.errors.length - 1,
    });
  }
  try {
    return { value: doc.toJS(), source: { file, doc, lines } };
  } catch (e) {
    // toJS refuses alias bombs (maxAliasCount); report that as bad input, not a crash.
    throw new ScenarioError({ file, path: '', expected: '', problem: `YAML error: ${(e as Error).message}` });
  }
}

/**
 * The 1-based line and column of the value at `path`, or of its nearest ancestor present in the
 * file (a missing key is reported where its mapping is). For the last segment of a mapping, the
 * position of the key itself is used when the key exists but its value is empty.
 *
 * @example
 * locate(parseYaml('a:\n  b: 1\n', 'x').source, ['a', 'b']) // { line: 2, column: 6 }
 */
export function locate(
  source: YamlSource,
  path: readonly PropertyKey[],
): { line: number; column: number } | undefined {
  let node: unknown = source.doc.contents;
  let at = start(node);
  for (const segment of path) {
    // An alias (*name) stands for its anchor's node: look inside that one.
    if (isAlias(node)) node = node.resolve(source.doc);
    if (isMap(node)) {
      const pair = node.items.find((p) => String(isScalar(p.key) ? p.key.value : p.key) === String(segment));
      if (!pair) break;
      at = start(pair.value) ?? start(pair.key) ?? at;
      node = pair.value;
    } else if (isSeq(node)) {
      const item = node.items[Number(segment)];
      if (item === undefined) break;
      at = start(item) ?? at;
      node = item;
    } else {
      break;
    }
  }
  if (at === undefined) return undefined;
  const { line, col } = source.lines.linePos(at);
  return { line, column: col };
}

function start(node: unknown): number | undefined {
  const range = (node as Node | null | undefined)?.range;
  return range ? range[0] : undefined;
}
