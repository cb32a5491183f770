/**
 * Whether this agent process may run the provider's Ray node. Two processes can hold one provider's credentials
 * (a restart after `docker kill`, or a copy of the state volume): the manager decides which boot is current, so
 * the node runs only after the manager accepted a heartbeat from this boot, and stops when it refuses one.
 */
export class IdentityGate {
  private holding = false;
  private waiters: Array<() => void> = [];

  get held(): boolean {
    return this.holding;
  }

  /** The manager accepted this boot. */
  hold(): void {
    if (this.holding) return;
    this.holding = true;
    for (const wake of this.waiters.splice(0)) wake();
  }

  /** The manager gave the provider to another boot. */
  release(): void {
    this.holding = false;
  }

  /** Resolves once the identity is held, or when the signal aborts. */
  whenHeld(signal: AbortSignal): Promise<void> {
    if (this.holding || signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        signal.removeEventListener('abort', done);
        this.waiters = this.waiters.filter((waiter) => waiter !== done);
        resolve();
      };
      this.waiters.push(done);
      signal.addEventListener('abort', done, { once: true });
    });
  }
}
