import { ExitCode, STOP_STEPS_SECONDS } from '@ray-agent/protocol';
import type { Logger } from './log.js';

/** The part of the supervisor the crash policy needs; `abandon` kills Ray, says "stopped" and exits. */
export interface Abandonable {
  abandon?: (reason: string) => Promise<void>;
}

export interface CrashPolicyDeps {
  /** The agent's logger once it exists; before that the fault is one line on stderr. */
  log: () => Logger | undefined;
  /** The supervisor once it exists. */
  supervisor: () => Abandonable | undefined;
  /** Strings that must never reach the log (the enrollment token, the provider credential). */
  secrets: () => Array<string | undefined>;
  exit: (code: number) => void;
  /** How long abandoning may take before the process exits anyway. */
  abandonBoundMs?: number;
}

/**
 * Abandoning kills Ray by PID and sends a last heartbeat, each bounded by the supervisor; this backstop only
 * catches an abandon that hangs for another reason, so it is the sum of every bounded stop step.
 */
export const ABANDON_BOUND_MS =
  Object.values(STOP_STEPS_SECONDS).reduce((sum: number, seconds: number) => sum + seconds, 0) * 1000;

/**
 * A fault nobody caught (an unhandled rejection, an uncaught exception) leaves the agent in a state no code path
 * planned for, so it is not survived in place: it is logged once and the agent ends the way a restart survives:
 * Ray killed, the manager told "stopped" (so the restarted container takes its provider back at once) and exit 1
 * for the restart policy. A second fault while abandoning exits at once.
 */
export function installCrashPolicy(deps: CrashPolicyDeps): (error: unknown) => void {
  let faults = 0;
  const bound = deps.abandonBoundMs ?? ABANDON_BOUND_MS;
  const exitNow = () => {
    deps.log()?.flush();
    deps.exit(ExitCode.forced);
  };
  const onFault = (kind: FaultKind) => (error: unknown) => {
    faults += 1;
    const { message, stack } = describeFault(error, deps.secrets());
    const log = deps.log();
    if (faults > 1) {
      if (log)
        log.fatal({ fault: kind, err: message, stack }, 'a second unexpected failure while stopping: exiting now');
      else process.stderr.write(`ray-agent: a second unexpected failure while stopping (${kind}): ${message}\n`);
      exitNow();
      return;
    }
    if (log) log.fatal({ fault: kind, err: message, stack }, `unexpected failure: ${message}`);
    else process.stderr.write(`ray-agent: unexpected failure (${kind}): ${stack}\n`);
    const supervisor = deps.supervisor();
    if (!supervisor || typeof supervisor.abandon !== 'function') {
      exitNow();
      return;
    }
    const backstop = setTimeout(() => {
      deps.log()?.error({ boundMs: bound }, 'stopping after the failure did not finish: exiting now');
      exitNow();
    }, bound);
    supervisor.abandon(`${kind}: ${message}`).then(
      () => {
        clearTimeout(backstop);
        exitNow();
      },
      (abandonError: unknown) => onFault('unhandledRejection')(abandonError),
    );
  };
  process.on('unhandledRejection', onFault('unhandledRejection'));
  process.on('uncaughtException', onFault('uncaughtException'));
  // The agent's own main() failing is handled the same way.
  return onFault('mainFailed');
}

type FaultKind = 'unhandledRejection' | 'uncaughtException' | 'mainFailed';

/** The error's message and stack with every known secret and any bearer value blanked out. */
export function describeFault(error: unknown, secrets: Array<string | undefined>): { message: string; stack: string } {
  const message = error instanceof Error ? error.message : String(error);
  const stack = error instanceof Error ? (error.stack ?? message) : message;
  const clean = (text: string) => {
    let out = text.replace(/(bearer\s+)[^\s"',;]+/gi, '$1[redacted]');
    for (const secret of secrets) if (secret && secret.length >= 8) out = out.split(secret).join('[redacted]');
    return out;
  };
  return { message: clean(message), stack: clean(stack) };
}
