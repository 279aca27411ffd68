import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { buildCharts } from './charts.js';
import { readmeChartsBlock, replaceReadmeCharts } from './readmeCharts.js';

/** `npm run charts`: regenerates the Mermaid charts embedded in README.md. */
const readmePath = fileURLToPath(new URL('../../README.md', import.meta.url));
const before = readFileSync(readmePath, 'utf8');
const after = replaceReadmeCharts(before, readmeChartsBlock(await buildCharts(undefined, false)));
if (after !== before) writeFileSync(readmePath, after);
process.stdout.write(after === before ? 'README.md charts are current\n' : 'README.md charts regenerated\n');
