import { TIMING_TABLE, type TimingEntry } from '../hw/timing.js';
import { showFound } from './errors.js';
import type { Problem } from './issues.js';
import type { Scenario } from './schema.js';
import type { EmulatedOp, Script, ScriptOp } from './scriptOps.js';
import type { Vm } from './vm.js';

/** One script together with what its indices and names may refer to. */
interface ScriptScope {
  /** Path of the `script` mapping in the input. */
  path: readonly PropertyKey[];
  script: Script;
  /** Keys and `ipi.to` index these: a VM's vCPUs, or the host's cores. */
  unit: 'vCPU' | 'core';
  units: number;
  /** Processes the script's OS has (`guest.processes`, or `hostProcesses.count`). */
  processes: number;
  /** L2 VMs that `vmrun` may name; undefined where `vmrun` makes no sense (the host). */
  l2Names: readonly string[] | undefined;
}

/**
 * The checks zod cannot make because they relate one part of the scenario to another: a machine
 * with cores, pins to cores (or, for an L2, to L1 vCPUs) that exist, one pin per vCPU, unique VM
 * names at every level, scripts only for vCPUs/cores that exist, process and IPI indices in range,
 * `vmrun` only of this VM's own L2s, and every `awaitSyncpoint` matched by a `syncpoint`.
 *
 * @returns every problem found, in scenario order (empty: the topology is possible)
 * @example
 * checkTopology(ScenarioSchema.parse({ name: 'x', hardware: { cores: 0 } }))
 * // [{ path: ['hardware', 'cores'], problem: 'impossible topology: hardware has 0 cores', ... }]
 */
export function checkTopology(scenario: Scenario): Problem[] {
  const problems: Problem[] = [];
  const { cores } = scenario.hardware;
  if (cores === 0) {
    problems.push({
      path: ['hardware', 'cores'],
      problem: 'impossible topology: hardware has 0 cores',
      expected: 'at least 1 core',
      found: '0',
    });
  }
  // Latency overrides name entries of the timing table (docs/timing.md), which hw owns.
  for (const section of ['hardware', 'host'] as const) {
    for (const key of Object.keys(scenario[section].latency)) {
      if (!Object.hasOwn(TIMING_TABLE, key)) {
        problems.push({
          path: [section, 'latency', key],
          problem: 'unknown latency name',
          expected: `one of ${Object.keys(TIMING_TABLE).join(', ')}`,
          found: key,
        });
        continue;
      }
      // An override of a figure no model reads would change nothing: say so instead.
      const reference = (TIMING_TABLE[key as keyof typeof TIMING_TABLE] as TimingEntry).reference;
      if (reference !== undefined) {
        problems.push({
          path: [section, 'latency', key],
          problem: `not an input of the model: ${reference}`,
          expected: 'a latency the model uses (`rapsim run FILE --latency` lists them)',
          found: key,
        });
      }
    }
  }
  // host.scheduler.slice / haltPoll are the timing table's schedSlice / haltPoll (compose.ts).
  for (const [key, entry] of [
    ['slice', 'schedSlice'],
    ['haltPoll', 'haltPoll'],
  ] as const) {
    for (const section of ['hardware', 'host'] as const) {
      if (scenario.host.scheduler[key] !== undefined && Object.hasOwn(scenario[section].latency, entry)) {
        problems.push({
          path: [section, 'latency', entry],
          problem: `set twice: host.scheduler.${key} is the same number`,
          expected: `host.scheduler.${key} or ${section}.latency.${entry}, not both`,
          found: 'both',
        });
      }
    }
  }
  const scopes: ScriptScope[] = [
    {
      path: ['hostProcesses', 'script'],
      script: scenario.hostProcesses.script,
      unit: 'core',
      units: cores,
      processes: scenario.hostProcesses.count,
      l2Names: undefined,
    },
  ];
  checkVms(scenario.vms, ['vms'], { unit: 'core', units: cores }, new Map(), problems, scopes);
  const syncpoints = new Set(scopes.flatMap((s) => Object.values(s.script).flat()).flatMap(syncpointName));
  for (const scope of scopes) checkScript(scope, syncpoints, problems);
  return problems;
}

/** Pins, names and scripts of the VMs at one level, then of their L2s. */
function checkVms(
  vms: readonly Vm[],
  path: readonly PropertyKey[],
  host: { unit: 'core' | 'L1 vCPU'; units: number },
  names: Map<string, string>,
  problems: Problem[],
  scopes: ScriptScope[],
): void {
  vms.forEach((vm, i) => {
    const at = [...path, i];
    const earlier = names.get(vm.name);
    if (earlier !== undefined) {
      problems.push({
        path: [...at, 'name'],
        problem: 'duplicate VM name',
        expected: `a name no other VM has (${earlier} is already ${JSON.stringify(vm.name)})`,
        found: showFound(vm.name),
      });
    } else {
      names.set(vm.name, at.join('.'));
    }
    checkPins(vm, at, host, problems);
    if (host.unit === 'L1 vCPU' && vm.nice !== 0) {
      problems.push({
        path: [...at, 'nice'],
        problem: "not modelled: weights in the L1 hypervisor's scheduler",
        expected: '0 (L1 alternates between its L2 VMs by slice; nice applies to VMs the host runs)',
        found: showFound(vm.nice),
      });
    }
    scopes.push({
      path: [...at, 'guest', 'script'],
      script: vm.guest.script,
      unit: 'vCPU',
      units: vm.vcpus,
      processes: vm.guest.processes,
      l2Names: vm.nested?.vms.map((l2) => l2.name) ?? [],
    });
    if (vm.nested) {
      checkVms(
        vm.nested.vms,
        [...at, 'nested', 'vms'],
        { unit: 'L1 vCPU', units: vm.vcpus },
        names,
        problems,
        scopes,
      );
    }
  });
}

function checkPins(
  vm: Vm,
  at: readonly PropertyKey[],
  host: { unit: 'core' | 'L1 vCPU'; units: number },
  problems: Problem[],
): void {
  if (!vm.pin) {
    if (host.unit === 'L1 vCPU' && vm.vcpus > host.units) {
      problems.push({
        path: [...at, 'vcpus'],
        problem: 'impossible topology: an L2 vCPU without an L1 vCPU to run it',
        expected: `at most ${host.units} (L2 vCPU i runs on L1 vCPU i; \`pin\` places them otherwise, one per L1 vCPU)`,
        found: showFound(vm.vcpus),
      });
    }
    return;
  }
  if (vm.pin.length !== vm.vcpus) {
    problems.push({
      path: [...at, 'pin'],
      expected: `one ${host.unit} per vCPU: a list of ${vm.vcpus} index${vm.vcpus === 1 ? '' : 'es'}`,
      found: showFound(vm.pin),
    });
  }
  vm.pin.forEach((target, j) => {
    if (target >= host.units) {
      problems.push({
        path: [...at, 'pin', j],
        expected: indexRange(host.unit, host.units),
        found: showFound(target),
      });
    }
  });
  if (host.unit === 'L1 vCPU') checkL2Pins(vm, at, problems);
}

/**
 * An L1 vCPU runs at most one vCPU of each of its L2 VMs: L1's scheduler alternates between its
 * L2 VMs, and L0 tells their VMRUNs apart by VM (nestedSvm.ts). Without `pin`, L2 vCPU i runs on
 * L1 vCPU i, so the L2 may not have more vCPUs than its L1.
 */
function checkL2Pins(vm: Vm, at: readonly PropertyKey[], problems: Problem[]): void {
  const first = new Map<number, number>();
  vm.pin?.forEach((target, j) => {
    const earlier = first.get(target);
    if (earlier === undefined) first.set(target, j);
    else {
      problems.push({
        path: [...at, 'pin', j],
        problem: 'not modelled: two vCPUs of one L2 VM on one L1 vCPU',
        expected: `an L1 vCPU that runs no other vCPU of ${JSON.stringify(vm.name)} (vCPU ${earlier} is already on L1 vCPU ${target})`,
        found: showFound(target),
      });
    }
  });
}

/** Script keys against vCPUs/cores, then each operation's references. */
function checkScript(scope: ScriptScope, syncpoints: ReadonlySet<string>, problems: Problem[]): void {
  for (const [key, ops] of Object.entries(scope.script)) {
    if (Number(key) >= scope.units) {
      problems.push({
        path: [...scope.path, key],
        expected: indexRange(scope.unit, scope.units),
        found: key,
      });
    }
    ops.forEach((op, i) => {
      for (const p of opProblems(op, scope, syncpoints))
        problems.push({ ...p, path: [...scope.path, key, i, ...p.path] });
    });
  }
}

/** Problems of one operation, with paths relative to the operation. */
function opProblems(op: ScriptOp, scope: ScriptScope, syncpoints: ReadonlySet<string>): Problem[] {
  switch (op.op) {
    case 'switchTo':
    case 'movCr3':
    case 'invpcid':
      return processProblems(op, scope);
    case 'emulate':
      return processProblems(op.inner, scope).map((p) => ({ ...p, path: ['emulate', ...p.path] }));
    case 'ipi':
    case 'init':
      return op.to < scope.units
        ? []
        : [
            {
              path: [op.op, 'to'],
              expected: indexRange(scope.unit, scope.units),
              found: showFound(op.to),
            },
          ];
    case 'vmrun':
      return vmrunProblems(op.vm, scope);
    case 'awaitSyncpoint':
      return syncpoints.has(op.name)
        ? []
        : [
            {
              path: ['awaitSyncpoint'],
              expected: `the name of a syncpoint in some script (${known([...syncpoints])})`,
              found: showFound(op.name),
            },
          ];
    default:
      return [];
  }
}

function processProblems(op: ScriptOp | EmulatedOp, scope: ScriptScope): Problem[] {
  if (!('process' in op) || op.process === undefined || op.process < scope.processes) return [];
  const expected =
    scope.processes === 0 ? 'no process: hostProcesses.count is 0' : indexRange('process', scope.processes);
  return [{ path: [op.op, 'process'], expected, found: showFound(op.process) }];
}

function vmrunProblems(name: string, scope: ScriptScope): Problem[] {
  if (scope.l2Names?.includes(name)) return [];
  const expected =
    scope.l2Names === undefined
      ? 'no vmrun in a host script: only an L1 guest runs L2 VMs'
      : scope.l2Names.length === 0
        ? 'no vmrun here: this VM has no nested VMs'
        : `the name of one of this VM's L2 VMs (${known(scope.l2Names)})`;
  return [{ path: ['vmrun'], expected, found: showFound(name) }];
}

function syncpointName(op: ScriptOp): string[] {
  return op.op === 'syncpoint' ? [op.name] : [];
}

/** "a core index in 0..3"; `unit` decides the article ("an L1 vCPU index"). */
function indexRange(unit: string, count: number): string {
  const what = `${/^[aeiouL]/.test(unit) ? 'an' : 'a'} ${unit} index`;
  return count === 0 ? `${what}, but there are none` : `${what} in 0..${count - 1}`;
}

function known(names: readonly string[]): string {
  return names.length === 0 ? 'there are none' : `known: ${[...new Set(names)].join(', ')}`;
}
