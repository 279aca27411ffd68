/**
 * The YAML of a nested scenario for tests: one L1 of `vcpus` vCPUs (given ERAPS, one quiet
 * process of its own) on as many cores, under linux-7.0 at both levels with NPT on, running the
 * L2 VMs `l2Vms` (YAML list items, indented for `vms:` under `nested:`).
 */
export function nestedScenario(opts: {
  name: string;
  vcpus: number;
  l2Vms: string;
  until?: string;
  /** L0's scheduler slice, and L1's between its L2s. */
  slice?: string;
  /** More keys of L1's `guest:` map, each with a leading comma. */
  l1Guest?: string;
}): string {
  const scheduler = opts.slice ? `, scheduler: { slice: ${opts.slice} }` : '';
  return `name: ${opts.name}
seed: 1
until: ${opts.until ?? '200us'}
hardware: { cores: ${opts.vcpus}, spec: eraps-amd }
host: { npt: true, policy: linux-7.0${scheduler} }
vms:
  - name: l1
    vcpus: ${opts.vcpus}
    cpuid: { eraps: true }
    guest: { processes: 1, contextSwitch: { every: 0 }${opts.l1Guest ?? ''} }
    nested:
      policy: linux-7.0
      vms:
${opts.l2Vms}`;
}
