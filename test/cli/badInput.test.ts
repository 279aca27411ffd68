import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type CliResult, rapsim, repoRoot, tempDir, writeTempScenario } from '../helpers/cli.js';

/**
 * interface.md, "Exit codes": bad input exits 2 and "never prints a stack trace: it prints the
 * file, the dotted path, what was expected and what was found".
 */

/** A valid, tiny bare-metal scenario for the flag tests (--set, --seed, --until). */
const OK_SCENARIO = 'name: ok\nuntil: 10us\nhardware:\n  cores: 2\nhostProcesses:\n  count: 1\n';

/** One clear paragraph on stderr, nothing on stdout, no stack trace, exit 2. */
function expectBadInput(r: CliResult): void {
  expect(r.code, `stderr: ${r.stderr}`).toBe(2);
  expect(r.stdout).toBe('');
  expect(r.stderr.trim()).not.toBe('');
  // One paragraph: a single line of text, no blank line.
  expect(r.stderr.trim().split('\n')).toHaveLength(1);
  expect(r.stderr).not.toMatch(/\n\s+at /);
  expect(r.stderr).not.toMatch(/\bat .*\(.*:\d+:\d+\)/);
}

interface FileCase {
  title: string;
  yaml: string;
  /** The dotted path the message must name, if the error has one. */
  path?: string;
  /** Further text the message must contain: the expectation and the value found. */
  mentions: (string | RegExp)[];
}

const NESTED = (l2: string) =>
  `name: x\nhardware: { cores: 2 }\nvms:\n  - name: l1\n    vcpus: 2\n    nested:\n      policy: linux-7.0\n      vms: [ { name: l2, vcpus: 2, ${l2} } ]\n`;

const fileCases: FileCase[] = [
  {
    title: 'Hyper-V enlightened flush for an L2 guest',
    yaml: NESTED('hypervTlbFlush: true'),
    path: 'vms.0.nested.vms.0.hypervTlbFlush',
    mentions: [/enlightened flush for an L2 guest/, /not modelled/],
  },
  {
    title: 'a host task on a core that runs no vCPU',
    yaml: 'name: x\nhardware: { cores: 4 }\nhost:\n  tasks: [ { name: vhost, every: 1ms, run: 100us, cores: [3] } ]\nvms:\n  - { name: a, vcpus: 2 }\n',
    path: 'host.tasks.0.cores.0',
    mentions: [/a core that runs vCPUs \(0, 1\)/, /found 3|3/],
  },
  {
    title: 'host tasks without a VM',
    yaml: 'name: x\nhardware: { cores: 2 }\nhost:\n  tasks: [ { name: vhost, every: 1ms, run: 100us } ]\nhostProcesses: { count: 1 }\n',
    path: 'host.tasks',
    mentions: [/VMs whose vCPU threads/],
  },
  {
    title: 'a host task that runs longer than its period',
    yaml: 'name: x\nhardware: { cores: 2 }\nhost:\n  tasks: [ { name: vhost, every: 100us, run: 1ms } ]\nvms:\n  - { name: a, vcpus: 2 }\n',
    path: 'host.tasks.0.run',
    mentions: [/run shorter than every/],
  },
  {
    // Beside VMs host processes run only on cores without vCPUs: these would never run at all.
    title: 'host processes beside VMs that take every core',
    yaml: 'name: x\nhardware: { cores: 2 }\nhostProcesses: { count: 2 }\nvms:\n  - { name: a, vcpus: 2 }\n',
    path: 'hostProcesses.count',
    mentions: [/every core runs vCPUs/, /process 0 on cores that all run vCPUs/],
  },
  {
    title: 'a host process whose span holds only vCPU cores',
    yaml: 'name: x\nhardware: { cores: 4 }\nhostProcesses: { count: 2, threadsPerProcess: [4, 2] }\nvms:\n  - { name: a, vcpus: 2 }\n',
    path: 'hostProcesses.threadsPerProcess',
    mentions: [
      /a core without vCPUs \(beside VMs they run only there: 2, 3\)/,
      /process 1 on cores that all run vCPUs/,
    ],
  },
  {
    title: 'a host-process script for a core that runs vCPUs',
    yaml: 'name: x\nhardware: { cores: 3 }\nhostProcesses:\n  count: 1\n  script: { 0: [ { call: 1 } ] }\nvms:\n  - { name: a, vcpus: 2 }\n',
    path: 'hostProcesses.script.0',
    mentions: [/a core without vCPUs \(2\)/, /core 0, which runs vCPUs/],
  },
  {
    title: 'a last-level cache that does not divide the socket',
    yaml: 'name: x\nhardware: { cores: 8, coresPerLlc: 3 }\n',
    path: 'hardware.coresPerLlc',
    mentions: [/divisor of coresPerSocket \(8\)/],
  },
  {
    title: 'malformed YAML',
    yaml: 'name: x\nhardware:\n  cores: 4\n   spec: legacy\n',
    mentions: [/YAML syntax error/i, /line 3/],
  },
  {
    title: 'an unknown top-level key',
    yaml: 'name: x\nhardwar: { cores: 2 }\n',
    path: 'hardwar',
    mentions: [/unknown key/i, /expected one of .*\bhardware\b/],
  },
  {
    title: 'an unknown nested key (hardware.coress)',
    yaml: 'name: x\nhardware:\n  cores: 4\n  coress: 3\n',
    path: 'hardware.coress',
    mentions: [/unknown key/i, /expected one of .*\bcores\b/],
  },
  {
    title: 'a wrong type (hardware.cores: "four")',
    yaml: 'name: x\nhardware:\n  cores: "four"\n',
    path: 'hardware.cores',
    mentions: [/expected an integer/, /found "four"/],
  },
  {
    title: 'an unknown policy (host.policy: foo)',
    yaml: 'name: x\nhost:\n  policy: foo\n',
    path: 'host.policy',
    mentions: [/expected one of .*\bnaive\b.*\blinux-7\.0\b/, /found "foo"/],
  },
  {
    title: 'an unknown spec',
    yaml: 'name: x\nhardware:\n  spec: eraps-intel\n',
    path: 'hardware.spec',
    mentions: [/expected one of .*\blegacy\b.*\beraps-amd\b/, /found "eraps-intel"/],
  },
  {
    title: '0 cores',
    yaml: 'name: x\nhardware:\n  cores: 0\n',
    path: 'hardware.cores',
    mentions: [/expected at least 1 core/, /found 0\b/],
  },
  {
    title: 'a pin to a core that does not exist',
    yaml: 'name: x\nhardware: { cores: 4 }\nvms:\n  - name: vm0\n    vcpus: 2\n    pin: [0, 9]\n',
    path: 'vms.0.pin.1',
    mentions: [/expected a core index in 0\.\.3/, /found 9\b/],
  },
  {
    title: 'a script op on a vCPU that does not exist',
    yaml:
      'name: x\nhardware: { cores: 4 }\nvms:\n  - name: vm0\n    vcpus: 2\n    guest:\n' +
      '      processes: 2\n      script:\n        5: [ { call: 1 }, { ret: 1 } ]\n',
    path: 'vms.0.guest.script.5',
    mentions: [/expected a vCPU index in 0\.\.1/, /found 5\b/],
  },
  {
    title: 'a host script on a core that does not exist',
    yaml:
      'name: x\nhardware: { cores: 4 }\nhostProcesses:\n  count: 2\n  script:\n' +
      '    7: [ { call: 1 }, { ret: 1 } ]\n',
    path: 'hostProcesses.script.7',
    mentions: [/expected a core index in 0\.\.3/, /found 7\b/],
  },
  {
    title: 'an unknown latency key (hardware.latency: { bogus: 1us })',
    yaml: 'name: x\nhardware:\n  cores: 2\n  latency: { bogus: 1us }\n',
    // The precise path hardware.latency.bogus is checked by the it.fails test below.
    path: 'hardware.latency',
    mentions: [/bogus/, /expected one of .*\bipiSameSocket\b/],
  },
];

describe('rapsim run with a bad scenario file exits 2 with one paragraph, no stack trace', () => {
  it.each(fileCases)('$title', async ({ yaml, path, mentions }) => {
    const file = writeTempScenario('bad.yaml', yaml);
    const r = await rapsim(['run', file]);
    expectBadInput(r);
    expect(r.stderr).toContain(file);
    if (path) expect(r.stderr).toContain(path);
    for (const m of mentions) expect(r.stderr).toMatch(m);
  });

  it('a nonexistent scenario file', async () => {
    const file = join(tempDir(), 'does-not-exist.yaml');
    const r = await rapsim(['run', file]);
    expectBadInput(r);
    expect(r.stderr).toContain(file);
    expect(r.stderr).toMatch(/cannot read|no such file|not found|ENOENT/i);
  });

  // BUG (src/cli/runCommand.ts badInput + src/hw/timing.ts TimingKeyError): an unknown latency key
  // is only detected when the timing table is built, so the message cannot say where it came from.
  // It prints the made-up path "hardware.latency / host.latency" (the same text for a bad key in
  // host.latency, and for --set hardware.latency.bogus=1us), no line number, and not the dotted
  // path of the offending key (hardware.latency.bogus). Every other schema error names the exact
  // path and line (interface.md: "it prints the file, the dotted path, ...").
  it('an unknown latency key names its exact dotted path and line', async () => {
    const file = writeTempScenario('bad.yaml', 'name: x\nhardware:\n  cores: 2\n  latency: { bogus: 1us }\n');
    const r = await rapsim(['run', file]);
    expectBadInput(r);
    expect(r.stderr).toContain('hardware.latency.bogus');
    expect(r.stderr).toMatch(/line 4/);
    expect(r.stderr).not.toContain('host.latency');
  });
});

describe('rapsim run with bad flags exits 2 with one paragraph, no stack trace', () => {
  it('--set of an unknown path', async () => {
    const file = writeTempScenario('ok.yaml', OK_SCENARIO);
    const r = await rapsim(['run', file, '--set', 'hardware.coress=4']);
    expectBadInput(r);
    expect(r.stderr).toContain(file);
    expect(r.stderr).toContain('hardware.coress');
    expect(r.stderr).toContain('--set');
    expect(r.stderr).toMatch(/unknown key/i);
    expect(r.stderr).toMatch(/expected one of .*\bcores\b/);
  });

  it('--set of an unknown top-level path', async () => {
    const file = writeTempScenario('ok.yaml', OK_SCENARIO);
    const r = await rapsim(['run', file, '--set', 'nosuch.path=1']);
    expectBadInput(r);
    expect(r.stderr).toContain(file);
    expect(r.stderr).toContain('nosuch');
    expect(r.stderr).toMatch(/unknown key/i);
  });

  it('--seed abc', async () => {
    const file = writeTempScenario('ok.yaml', OK_SCENARIO);
    const r = await rapsim(['run', file, '--seed', 'abc']);
    expectBadInput(r);
    expect(r.stderr).toContain('--seed');
    expect(r.stderr).toMatch(/expected an integer/);
    expect(r.stderr).toContain('"abc"');
  });

  it('--until fast', async () => {
    const file = writeTempScenario('ok.yaml', OK_SCENARIO);
    const r = await rapsim(['run', file, '--until', 'fast']);
    expectBadInput(r);
    expect(r.stderr).toContain('--until');
    expect(r.stderr).toMatch(/expected a duration/);
    expect(r.stderr).toContain('"fast"');
  });

  it("the other command's spelling of an option gets a hint, not only commander's error", async () => {
    const file = writeTempScenario('ok.yaml', OK_SCENARIO);
    const [sweepWorkers, runThreads, typo] = await Promise.all([
      rapsim(['sweep', file, '--workers', '2']),
      rapsim(['run', file, '--threads', '2']),
      rapsim(['sweep', file, '--treads', '2']),
    ]);
    for (const r of [sweepWorkers, runThreads, typo]) {
      expect(r.code, r.stderr).toBe(2);
      expect(r.stdout).toBe('');
    }
    expect(sweepWorkers.stderr).toMatch(/unknown option '--workers'\nhint: .*`sweep --threads N`/);
    expect(runThreads.stderr).toMatch(
      /unknown option '--threads'\nhint: `run` spreads one simulation over --workers N/,
    );
    // A typo keeps commander's own suggestion and gets no hint of ours.
    expect(typo.stderr).toMatch(/Did you mean --threads\?/);
    expect(typo.stderr).not.toContain('hint:');
  });

  it('--seed or --until beside a --set of the same field: one of them would silently lose', async () => {
    const file = writeTempScenario('ok.yaml', OK_SCENARIO);
    const [seed, until] = await Promise.all([
      rapsim(['run', file, '--seed', '2', '--set', 'seed=3']),
      rapsim(['run', file, '--until', '5us', '--set', 'until=8us']),
    ]);
    expectBadInput(seed);
    expect(seed.stderr).toContain('--seed: also set by --set seed=3; give one of them');
    expectBadInput(until);
    expect(until.stderr).toContain('--until: also set by --set until=8us');
  });

  it('--workers 0', async () => {
    const file = writeTempScenario('ok.yaml', OK_SCENARIO);
    const r = await rapsim(['run', file, '--workers', '0']);
    expectBadInput(r);
    expect(r.stderr).toContain('--workers');
  });

  // BUG (src/cli/runCommand.ts): --out is not checked before the run and the mkdirSync/writeFileSync
  // failure falls into the generic catch, so an --out the user cannot write to (here a path under a
  // regular file) is reported as "rapsim: internal error: Error: ENOTDIR: not a directory, mkdir ..."
  // WITH a stack trace, exit code 3. It is bad input (exit 2, no stack trace), and it is only
  // discovered after the whole simulation has run.
  it('an --out directory that cannot be created is bad input, not an internal error', async () => {
    const scenario = writeTempScenario('ok.yaml', OK_SCENARIO);
    const out = join(scenario, 'out'); // a directory under a regular file: cannot exist
    const r = await rapsim(['run', scenario, '--out', out]);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(out);
  });
});

describe('rapsim top-level options and commands', () => {
  it('--version exits 0 printing the version from package.json', async () => {
    const { version } = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as {
      version: string;
    };
    const r = await rapsim(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(version);
  });

  it('--help exits 0 and lists the commands', async () => {
    const r = await rapsim(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Usage: rapsim/);
    for (const cmd of ['run', 'sweep', 'charts', 'view'])
      expect(r.stdout).toMatch(new RegExp(`^\\s+${cmd}\\b`, 'm'));
  });

  it('an unknown command exits 2 naming it, without a stack trace', async () => {
    const r = await rapsim(['frobnicate']);
    expectBadInput(r);
    expect(r.stderr).toContain('frobnicate');
  });

  it('run without a scenario exits 2', async () => {
    const r = await rapsim(['run']);
    expectBadInput(r);
    expect(r.stderr).toMatch(/scenario/);
  });
});
