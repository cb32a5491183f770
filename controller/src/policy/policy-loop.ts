import { isDeepStrictEqual } from 'node:util';
import type { ContributionPolicy, PolicySignals, PolicyView, StopMode } from '@ray-agent/protocol';
import { decide, initialPolicyState, type PolicyState } from './contribution-policy.js';
import type { PolicyActuator, PolicyTarget } from './policy-target.js';

export interface PolicyLoopOptions {
  actuator: PolicyActuator;
  /** The machine's signals now (clock included). Should settle within a tick; a rejection skips that tick. */
  readSignals: () => Promise<PolicySignals>;
  /** The settings and the person's switch as they are now. */
  readInput: () => { policy: ContributionPolicy; contribute: boolean; stopMode: StopMode | null };
  /** Time between evaluations. Default 2000. */
  intervalMs?: number;
  /** Called when the view changes (mode, reason, sentence or since). */
  onView?: (view: PolicyView) => void;
  /** A failed read or apply. The same failure again is reported once until something succeeds. */
  onError?: (error: Error) => void;
}

/**
 * Runs the contribution policy: every tick (and on `poke`) it reads the signals and the settings, decides, and
 * hands the target to the actuator.
 *
 * - A target is applied only when it differs (structurally) from the last one applied successfully.
 * - Never two applies at once: a newer target waits for the one in flight (a stop that drains can take minutes),
 *   and targets decided meanwhile are skipped in favour of the latest. Evaluations go on while an apply runs, so
 *   the view stays current.
 * - A failed apply forgets what was applied (the container may be half-way) and is retried on the next tick.
 * - The first decision is always applied (nothing counts as applied at start): a controller restarted at any
 *   moment, say mid-throttle, puts the container right.
 *
 * The view says "paused" once the engine has asked for a drain-and-stop, also while that drain still runs.
 */
export class PolicyLoop {
  private readonly intervalMs: number;
  private state: PolicyState | null = null;
  private currentView: PolicyView;
  private desired: PolicyTarget | null = null;
  private applied: PolicyTarget | null = null;
  private applying: Promise<void> | null = null;
  private evaluating: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  private stopped = false;
  /** The last failure reported, per kind, so a lasting failure is reported once rather than every tick. */
  private readonly lastError: Record<'read' | 'apply', string | null> = { read: null, apply: null };

  constructor(private readonly options: PolicyLoopOptions) {
    this.intervalMs = options.intervalMs ?? 2000;
    this.currentView = {
      mode: 'paused',
      reason: null,
      sentence: "Paused: reading the machine's state",
      since: new Date().toISOString(),
    };
  }

  get view(): PolicyView {
    return this.currentView;
  }

  /** Evaluates at once, then every interval. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.stopped = false;
    this.schedule(0);
  }

  /** No more evaluations or applies; waits for an evaluation and an apply in flight. */
  async stop(): Promise<void> {
    this.running = false;
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    await this.evaluating;
    await this.applying;
  }

  /** Evaluates now (an OS event, a settings change); resolves once the resulting apply has finished or failed. */
  async poke(): Promise<void> {
    if (this.stopped) return;
    await this.evaluate();
    await this.pump();
  }

  /**
   * Applies the current target again even though it was applied already: the settings behind it changed (new
   * limits, a new spec), so "full" or "throttled" now means other figures. Resolves once that apply finished.
   */
  async reapply(): Promise<void> {
    if (this.stopped) return;
    await this.evaluate();
    this.applied = null;
    await this.pump();
  }

  private schedule(delayMs: number): void {
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.evaluate()
        .then(() => {
          void this.pump();
        })
        .finally(() => {
          if (this.running && this.timer === null) this.schedule(this.intervalMs);
        });
    }, delayMs);
  }

  /** Evaluations run one after another, so decisions see states in order. Never rejects. */
  private evaluate(): Promise<void> {
    const next = this.evaluating.then(() => this.evaluateOnce());
    this.evaluating = next;
    return next;
  }

  private async evaluateOnce(): Promise<void> {
    if (this.stopped) return;
    let signals: PolicySignals;
    let input: ReturnType<PolicyLoopOptions['readInput']>;
    try {
      signals = await this.options.readSignals();
      input = this.options.readInput();
    } catch (error) {
      this.report('read', error);
      return;
    }
    this.lastError.read = null;
    const decision = decide({ ...input, signals }, this.state ?? initialPolicyState(signals.nowMs));
    this.state = decision.state;
    this.desired = decision.target;
    if (!isDeepStrictEqual(decision.view, this.currentView)) {
      this.currentView = decision.view;
      try {
        this.options.onView?.(decision.view);
      } catch (error) {
        this.report('read', error);
      }
    }
  }

  /** Starts applying if needed, or joins the apply run in flight (which goes on to the latest target). */
  private pump(): Promise<void> {
    if (this.applying !== null) return this.applying;
    if (!this.needsApply()) return Promise.resolve();
    // Deferred by a microtask so `applying` is set before the run can finish and clear it.
    const run = Promise.resolve().then(() => this.applyUntilCurrent());
    this.applying = run;
    return run;
  }

  private needsApply(): boolean {
    return (
      !this.stopped &&
      this.desired !== null &&
      (this.applied === null || !isDeepStrictEqual(this.desired, this.applied))
    );
  }

  private async applyUntilCurrent(): Promise<void> {
    try {
      while (this.needsApply()) {
        const target = this.desired as PolicyTarget;
        try {
          await this.options.actuator.apply(target);
          this.applied = target;
          this.lastError.apply = null;
        } catch (error) {
          this.applied = null;
          this.report('apply', error);
          return; // the next tick retries
        }
      }
    } finally {
      this.applying = null;
    }
  }

  private report(kind: 'read' | 'apply', error: unknown): void {
    const failure = error instanceof Error ? error : new Error(String(error));
    if (failure.message === this.lastError[kind]) return;
    this.lastError[kind] = failure.message;
    try {
      this.options.onError?.(failure);
    } catch {
      // A failing error handler must not stop the loop.
    }
  }
}
