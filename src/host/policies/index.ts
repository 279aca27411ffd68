import { always } from './always.js';
import { hide } from './hide.js';
import { linux70 } from './linux70.js';
import { mutantForgetPvFlush } from './mutantForgetPvFlush.js';
import { naive } from './naive.js';
import type { ErapsPolicy } from './policy.js';
import { v6 } from './v6.js';

/** Every policy rapsim knows, by scenario name. Add a policy: one file, one line here. */
export const POLICIES: Readonly<Record<string, ErapsPolicy>> = Object.fromEntries(
  [hide, naive, v6, linux70, always, mutantForgetPvFlush].map((p) => [p.name, p]),
);

export function policyByName(name: string): ErapsPolicy {
  const p = POLICIES[name];
  if (!p) throw new Error(`unknown policy "${name}"; expected one of ${Object.keys(POLICIES).join(', ')}`);
  return p;
}

export type { Decision, ErapsPolicy, PendingTrigger } from './policy.js';
