import type { Port } from '../actors/hostedActor.js';
import type { Time } from '../actors/time.js';

/**
 * Where a message for a vCPU (a guest interrupt, a Hyper-V flush request) goes: the pCPU that
 * runs the vCPU now, or, when that may change and the sender cannot know it (the vCPU migrates
 * inside a domain that another partition owns), the vCPU's own actor, which relays it to its
 * pCPU with no further latency. The link to the vCPU actor has the latency of the core it is on,
 * so the relay costs nothing in simulated time.
 */
export interface Route {
  to: number;
  relay: boolean;
}

/** Sends `type` to a routed destination, wrapped in a RELAY when the route says so. */
export function sendRouted(
  port: Port,
  route: Route,
  type: string,
  data: Record<string, unknown>,
  delay: Time,
  priority: number,
): void {
  if (route.relay) port.send(route.to, 'RELAY', { msg: type, data }, delay, priority);
  else port.send(route.to, type, data, delay, priority);
}
