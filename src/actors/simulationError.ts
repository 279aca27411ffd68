import { formatDuration, type Time } from './time.js';

/**
 * An internal error in a model or the kernel. It names the actor, the event and the simulated
 * time so that the printed replay command reproduces it (exit code 3).
 */
export class SimulationError extends Error {
  constructor(
    readonly actor: string,
    readonly event: string,
    readonly time: Time,
    readonly detail: string,
  ) {
    super(`actor ${actor}, event ${event}, at ${formatDuration(time)} (${time} ps): ${detail}`);
    this.name = 'SimulationError';
  }

  toJSON(): { actor: string; event: string; timePs: number; detail: string } {
    return { actor: this.actor, event: this.event, timePs: this.time, detail: this.detail };
  }
}
