import { ExitCode, type StatusView, type ViewPhase } from '@ray-agent/protocol';
import { EXIT_REASONS } from './view-model.js';

/**
 * Desktop notifications, only for what the person must act on (BOINC's and Tailscale's lesson: routine notices
 * are noise, and noise gets notifications turned off): the engine gone while contributing, the token refused,
 * the agent crash-looping, an update rolled back. Each condition notifies once, and again only after it has been
 * gone for CLEAR_MS, so a flapping state (a crash loop between restarts) does not notify on every flap.
 */
export type NoticeKind = 'engine-gone' | 'token-refused' | 'crash-looping' | 'update-rolled-back';

export interface NotifierOptions {
  /** The person's "notifications" setting, read at each notice. */
  enabled: () => boolean;
  show: (title: string, body: string) => void;
  now?: () => number;
}

/** A condition must stay away this long before it counts as cleared (and may notify again). */
export const CLEAR_MS = 2 * 60_000;

const TITLE = 'Ray Agent';
const DOCKER: ReadonlySet<ViewPhase> = new Set(['docker-missing', 'docker-stopped', 'docker-denied']);
/** Phases in which the agent was at work (or trying to be), so losing the engine matters. */
const ACTIVE: ReadonlySet<ViewPhase> = new Set([
  'pulling',
  'starting',
  'contributing',
  'reconnecting',
  'draining',
  'unreachable',
  'crash-looping',
  'error',
  'outdated',
]);
const TOKEN_REFUSED_DETAIL = EXIT_REASONS[ExitCode.enrollmentRejected];

export class Notifier {
  readonly #options: NotifierOptions;
  readonly #now: () => number;
  /** Conditions notified and not yet cleared; the value is when they were last seen absent (null: present). */
  readonly #active = new Map<NoticeKind, number | null>();
  #lastPhase: ViewPhase | null = null;
  /** The last phase seen with the engine ready: "gone" only counts after the engine was there. */
  #lastEnginePhase: ViewPhase | null = null;

  constructor(options: NotifierOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  observe(view: StatusView): void {
    const present = new Map<NoticeKind, string>();
    if (DOCKER.has(view.phase)) {
      if (this.#lastEnginePhase !== null && ACTIVE.has(this.#lastEnginePhase))
        present.set(
          'engine-gone',
          `${view.headline}. Ray Agent cannot contribute until it is back. ${view.detail ?? ''}`,
        );
    } else {
      this.#lastEnginePhase = view.phase;
    }
    const tokenRefused =
      view.registration.state === 'rejected' ||
      view.registration.state === 'needs_reregistration' ||
      (TOKEN_REFUSED_DETAIL !== undefined && view.detail === TOKEN_REFUSED_DETAIL);
    if (tokenRefused)
      present.set(
        'token-refused',
        'The manager refused the enrollment token: paste a new token from the cluster operator in Settings.',
      );
    else if (view.phase === 'crash-looping')
      present.set('crash-looping', `The agent keeps restarting. ${view.detail ?? 'See the log view.'}`);
    if (view.update?.state === 'rolled-back') present.set('update-rolled-back', view.update.sentence);

    for (const [kind, body] of present) this.#raise(kind, body);
    for (const kind of this.#active.keys()) if (!present.has(kind)) this.#absent(kind);
    this.#lastPhase = view.phase;
  }

  /** A condition the view does not carry (or carries late), e.g. the updater's own word that it rolled back. */
  event(kind: NoticeKind, text: string): void {
    this.#raise(kind, text);
  }

  /** For tests and diagnostics: the conditions notified and not yet cleared. */
  get active(): NoticeKind[] {
    return [...this.#active.keys()];
  }

  get lastPhase(): ViewPhase | null {
    return this.#lastPhase;
  }

  #raise(kind: NoticeKind, body: string): void {
    if (this.#active.has(kind)) {
      this.#active.set(kind, null);
      return;
    }
    this.#active.set(kind, null);
    if (!this.#options.enabled()) return;
    try {
      this.#options.show(TITLE, body.replace(/\s+/g, ' ').trim());
    } catch {
      // A desktop without a notification service: the window and the tray still say it.
    }
  }

  #absent(kind: NoticeKind): void {
    const since = this.#active.get(kind);
    const now = this.#now();
    if (since === null || since === undefined) this.#active.set(kind, now);
    else if (now - since >= CLEAR_MS) this.#active.delete(kind);
  }
}
