import { randomUUID } from 'node:crypto';
import os from 'node:os';
import {
  type AgentControlReply,
  type AgentControlRequest,
  type ClusterAccess,
  type DrainReason,
  ExitCode,
  type HeartbeatRequest,
  STOP_STEPS_SECONDS,
} from '@ray-agent/protocol';
import type { AgentConfig } from '../config/agent-config.js';
import { formatGcsAddress } from '../config/ray-head.js';
import { cgroupReader, freeBytes, hostCpus, hostMemory, shmSize } from '../limits/cgroup.js';
import { liveLimitsPath, writeLiveLimits } from '../limits/live-limits.js';
import { planLiveLimits } from '../limits/live-resize.js';
import type { RayResources } from '../limits/ray-resources.js';
import type { Logger } from '../log.js';
import { runHeartbeats } from '../manager/heartbeat-loop.js';
import { ManagerClient } from '../manager/manager-client.js';
import { EnrollmentRejectedError, register } from '../manager/registration.js';
import { ClusterAccessKeeper } from '../overlay/cluster-access.js';
import { type JoinTarget, needsRejoin } from '../overlay/join-target.js';
import { overlayPaths } from '../overlay/tunnel-files.js';
import { dialGcs, gcsConnected, probeGcs } from '../ray/gcs-probe.js';
import { RayLogWatcher } from '../ray/log-watcher.js';
import { drainNode, type OwnNode, resizeNode } from '../ray/node-control.js';
import { preflightCluster } from '../ray/preflight.js';
import { TaskCounter, tasksByName } from '../ray/task-counter.js';
import { checkSandbox, type SandboxCheck } from '../sandbox/sandbox-check.js';
import type { Credentials, StateStore } from '../state/state-store.js';
import type { StatusModel } from '../status/status-model.js';
import type { StatusServer } from '../status/status-server.js';
import { Backoff, sleep } from './backoff.js';
import { primaryAddress } from './host-facts.js';
import { IdentityGate } from './identity-gate.js';
import { killRayLeftovers, RayNode, rayletRunning } from './ray-node.js';
import { UsageSampler } from './usage-sampler.js';

export interface SupervisorDeps {
  config: AgentConfig;
  model: StatusModel;
  store: StateStore;
  resources: RayResources;
  statusServer: StatusServer;
  log: Logger;
  installId: string;
  credentials: Credentials | undefined;
  rayBin: string;
  python: string;
  /** Where the tunnel container's volume is mounted (TUNNEL_DIR); no such directory: direct mode. */
  tunnelDir: string;
  /** Called once when the agent is done; the process exits with the code. */
  exit: (code: number) => void;
}

/**
 * Sampling (tasks, usage, Ray's logs, the head) costs CPU on the person's machine: every 10 s while the node just
 * contributes and nobody looks, every 2 s while the status endpoint is read (the tray polls every 2 s) or the agent
 * is on its way somewhere (joining, reconnecting, draining), when states change and someone may be waiting.
 */
const IDLE_SAMPLE_MS = 10_000;
const WATCHED_SAMPLE_MS = 2_000;
/** A /status read keeps the fast cadence this long. */
const WATCHED_FOR_MS = 10_000;
/** While the raylet holds its GCS connection the head is taken as there; it is still dialled this often. */
const HEAD_DIAL_MS = 60_000;
/** How often a drain looks whether Ray has finished (its raylet exits by itself once the node is idle). */
const DRAIN_POLL_MS = 500;
const MISMATCH_RECHECK_MS = 300_000;
const { rayForceStop, leftoverKill, finalHeartbeat } = STOP_STEPS_SECONDS;
/** One `gvisor` slot per whole CPU Ray may use here, at least one. */
const sandboxSlots = (cpus: number) => Math.max(1, cpus);

/**
 * The agent's supervisor: registers with the manager, keeps a Ray worker node joined to the cluster (rejoining
 * after node or head loss), heartbeats, samples what the node is doing, and drains on a stop signal.
 */
export class AgentSupervisor {
  private readonly client: ManagerClient;
  /** Aborted when a stop is requested: wakes every wait of the join and registration loops. */
  private readonly stopping = new AbortController();
  /** Aborted once Ray has stopped: heartbeats keep reporting while the node drains. */
  private readonly heartbeatsDone = new AbortController();
  private credentials: Credentials | undefined;
  private node: RayNode | undefined;
  private sampler: NodeJS.Timeout | undefined;
  private samplingStopped = false;
  private lastSampleAt = 0;
  private lastReadAt = 0;
  private lastHeadDialAt = 0;
  private tick: (() => void) | undefined;
  private signals = 0;
  private readonly nodeIp: string;
  /** Tells this agent process apart from a copy running with the same credentials. */
  private readonly bootId = randomUUID();
  private joinedCluster: string | null | undefined;
  private headLost = false;
  /** Set when the agent itself stops the node to rejoin (e.g. under a new provider ID). */
  private rejoinReason: string | undefined;
  private checkingHead = false;
  /** The manager's word on whether this boot is the provider's current one: Ray runs only while it is. */
  private readonly identity = new IdentityGate();
  /** Set when the node is stopped because the manager gave the provider to another boot. */
  private identityLost = false;
  /** The manager refused this boot and has not accepted it since. */
  private refused = false;
  /** Re-registrations after "unknown provider" back off, so a confused manager is not hit at round-trip speed. */
  private readonly reregistration = new Backoff(2_000, 300_000);
  private abandoning = false;
  /** The overlay, the tunnel and the manager's ClusterAccess: where and how the node joins. */
  private readonly access: ClusterAccessKeeper;
  /** What the running (or last) node joined. */
  private joined: JoinTarget | undefined;
  /** Ray's sizing for the next start: the figures at agent start, then the latest live offer. */
  private resources: RayResources;
  /** What the running (or last) node was started with: its object store cannot change live. */
  private nodeResources: RayResources | undefined;
  /** Set by a `drain` request: Ray is not started again until the container stops. */
  private paused: DrainReason | undefined;
  /** The drain under way or done: a repeated request gets the same answer. */
  private drainRun: Promise<AgentControlReply> | undefined;
  /** `limits` requests apply one after the other, in the order they came. */
  private limitsQueue: Promise<unknown> = Promise.resolve();
  private readonly tasks = new TaskCounter();
  private usage: UsageSampler | undefined;
  /** The sandbox self-test, started with the agent; the first `ray start` waits for it (the resource is fixed then). */
  private sandboxChecked: Promise<SandboxCheck> | undefined;

  constructor(private readonly deps: SupervisorDeps) {
    this.client = new ManagerClient(deps.config.manager, { caFile: deps.config.managerCaFile });
    this.credentials = deps.credentials;
    this.resources = deps.resources;
    this.nodeIp = primaryAddress(deps.config.nodeIpAddress);
    deps.model.ray.nodeIp = this.nodeIp;
    const { config } = deps;
    deps.model.sandbox = { ...deps.model.sandbox, mode: config.acceptWork, networkAllowed: config.sandboxNetwork };
    this.access = new ClusterAccessKeeper(
      { ...config, nodeIp: this.nodeIp },
      overlayPaths(config.stateDir, deps.tunnelDir),
      deps.model,
      deps.log,
    );
  }

  async run(): Promise<void> {
    const { model } = this.deps;
    this.access.start();
    this.startSampling();
    this.sandboxChecked = this.checkSandbox();
    model.setState('connecting');
    if (!(await this.ensureRegistered())) return;
    const heartbeats = this.heartbeatLoop();
    await this.keepNodeJoined();
    await heartbeats;
  }

  /** First signal: drain. Second signal: stop now. */
  async shutdown(signal: string): Promise<void> {
    const { model, log, config } = this.deps;
    this.signals += 1;
    if (this.signals > 1) {
      log.warn({ signal }, 'second stop signal: stopping Ray now');
      this.node?.kill();
      this.deps.exit(ExitCode.forced);
      return;
    }
    log.info({ signal, drainDeadlineSeconds: config.drainDeadlineSeconds }, 'stop requested: draining the Ray node');
    model.setState('draining');
    this.stopping.abort();
    // Each step is bounded so the whole stop fits the container's stop timeout (protocol's agentStopSeconds).
    await this.stopRay(config.drainDeadlineSeconds);
    this.heartbeatsDone.abort();
    this.stopSampling();
    model.runningTasks = 0;
    model.setState('stopped');
    await this.finalHeartbeat();
    await this.deps.statusServer.close();
    await this.client.close();
    log.info('stopped cleanly');
    this.deps.exit(ExitCode.ok);
  }

  /** A request from the controller (the control socket): new limits, or a drain. */
  control(request: AgentControlRequest): Promise<AgentControlReply> {
    if (request.command === 'drain') {
      this.drainRun ??= this.drain(request.deadlineSeconds, request.reason);
      return this.drainRun;
    }
    const applied = this.limitsQueue.then(() => this.applyLimits(request));
    this.limitsQueue = applied.catch(() => undefined);
    return applied;
  }

  /**
   * The offer changed, or a throttle came or went. The offer is saved (LIVE_LIMITS_FILE) so a restarted agent sizes
   * Ray by it, and Ray's logical CPU and memory follow it live. A throttle alone leaves Ray's view as it is: the
   * tasks run on, slowly, under the quota the controller set.
   */
  private async applyLimits(request: Extract<AgentControlRequest, { command: 'limits' }>): Promise<AgentControlReply> {
    const { model, log, config } = this.deps;
    const cgroup = cgroupReader();
    const plan = planLiveLimits(request, {
      hostCpus: hostCpus(),
      hostMemoryBytes: hostMemory(),
      cgroupMemoryBytes: cgroup.memoryLimit(),
      shmBytes: shmSize(),
      tmpFreeBytes: freeBytes('/tmp'),
      runningObjectStoreBytes: (this.nodeResources ?? this.resources).objectStoreBytes,
    });
    if (plan.kind === 'refused') return { ok: false, message: plan.message };
    const { cpus, memoryBytes, throttleCpus } = request;
    writeLiveLimits(liveLimitsPath(config.stateDir), {
      cpus,
      memoryBytes,
      throttleCpus,
      updatedAt: new Date().toISOString(),
    });
    for (const warning of plan.warnings) log.warn(warning);
    const before = { rayCpus: model.limits.rayCpus, rayMemoryBytes: model.limits.rayMemoryBytes };
    const unchanged = before.rayCpus === plan.rayCpus && before.rayMemoryBytes === plan.rayMemoryBytes;
    const node = this.node;
    const joined = !this.paused && node?.running === true && model.ray.state === 'joined';
    let resizedLive = true;
    let detail = '';
    if (joined && !unchanged) {
      const outcome = await resizeNode(this.ownNode(), this.offeredCpus(plan.rayCpus), plan.rayMemoryBytes);
      resizedLive = outcome.ok;
      detail = outcome.detail ?? '';
      if (!outcome.ok) log.warn({ detail }, 'Ray refused the live resize');
    }
    // A node that starts later (after a crash, or none runs now) is sized by the new offer.
    this.resources = plan.resources;
    model.limits = {
      ...model.limits,
      cpus: Math.min(cpus, hostCpus()),
      memoryBytes: plan.resources.plan.memoryBytes,
      source: 'env',
      throttleCpus,
      ...(resizedLive ? { rayCpus: plan.rayCpus, rayMemoryBytes: plan.rayMemoryBytes } : {}),
    };
    if (this.usage) this.usage.cpuLimit = model.limits.cpus;
    const throttle = throttleCpus === null ? 'no throttle' : `throttled to ${throttleCpus} CPUs`;
    log.info({ cpus, memoryBytes, throttleCpus, rayCpus: plan.rayCpus, resizedLive }, 'live limits applied');
    const rayCpus = resizedLive ? plan.rayCpus : (before.rayCpus ?? plan.rayCpus);
    const message = !resizedLive
      ? `Ray refused the live resize, so it schedules ${rayCpus} CPUs until the agent is restarted (limits saved, ${throttle}): ${detail.slice(0, 200) || 'no reason given'}`
      : joined
        ? `Ray schedules ${plan.rayCpus} CPUs now (${throttle})`
        : this.paused
          ? `limits saved (${throttle}); Ray is paused (drained) and starts with ${plan.rayCpus} CPUs when the container starts again`
          : `limits saved (${throttle}); Ray is not running now and starts with ${plan.rayCpus} CPUs`;
    return { ok: true, message: message.slice(0, 500), rayCpus, resizedLive };
  }

  /**
   * Ray's own drain (reason preemption, this deadline): no new work here, running tasks finish and hand their results
   * to their owners, libraries that honour drains save their work. Ray's raylet exits by itself once the node is
   * idle; at the deadline whatever is left is killed. Ray is then not started again until the container stops; the
   * agent stays up and heartbeats `draining`, with a `paused` condition saying why.
   */
  private async drain(deadlineSeconds: number, reason: DrainReason): Promise<AgentControlReply> {
    const { model, log } = this.deps;
    const deadline = Date.now() + deadlineSeconds * 1000;
    this.paused = reason;
    model.setState('draining');
    log.info({ reason, deadlineSeconds }, 'drain requested: Ray takes no new work; running tasks may finish');
    const node = this.node;
    let tasksLeft = 0;
    let how = 'Ray was not running';
    if (node?.running && model.ray.state === 'joined') {
      model.ray.state = 'stopping';
      const outcome = await drainNode(this.ownNode(), deadline, `ray-agent: ${reason}`);
      if (outcome.ok) how = 'Ray drained';
      else {
        // Ray's own SIGTERM path drains too (RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S); the deadline below still holds.
        log.warn({ detail: outcome.detail }, "Ray refused the drain request; stopping with Ray's shutdown drain");
        how = `Ray refused the drain (${outcome.detail?.slice(0, 200) ?? 'no reason given'}), so it was stopped with its shutdown drain`;
        void node.stop(Math.max(0, (deadline - Date.now()) / 1000) + rayForceStop);
      }
      // Ray's raylet exits by itself once the node is idle. A stop signal meanwhile takes over: shutdown drains and
      // stops the node itself.
      const stop = this.stopping.signal;
      while (!stop.aborted && Date.now() < deadline && node.running && rayletRunning())
        await sleep(DRAIN_POLL_MS, stop);
      if (stop.aborted)
        return {
          ok: true,
          message: 'the agent was told to stop meanwhile; its own stop ends the drain',
          tasksLeft: this.tasks.count().running,
        };
      tasksLeft = this.tasks.count().running;
      if (tasksLeft > 0) {
        log.warn({ tasksLeft }, 'the drain deadline passed with tasks still running: stopping Ray now');
        this.tasks.forgetBusy(); // killed, not completed
        node.kill();
      }
      await node.stop(rayForceStop);
    } else if (node?.running) {
      await node.stop(rayForceStop); // still joining: nothing runs on it yet
    }
    if (node) await killRayLeftovers(leftoverKill * 1000);
    model.ray.state = 'stopped';
    model.ray.joinedAt = null;
    model.runningTasks = 0;
    model.tasksByName = [];
    // The drain's own counts saw the last tasks end: the status says so now, not at the next sample.
    model.tasksCompleted = this.tasks.completed;
    const message = `paused (${reason}): ${how}${tasksLeft > 0 ? `; ${tasksLeft} tasks were still running at the deadline and were stopped` : ''}; Ray stays stopped until the container is stopped`;
    model.fail('paused', message);
    log.info({ reason, tasksLeft }, 'drained: Ray stopped and stays stopped');
    return { ok: true, message: message.slice(0, 500), tasksLeft };
  }

  private ownNode(): OwnNode {
    const target = this.joined;
    return {
      python: this.deps.python,
      gcs: target?.gcs ?? this.deps.config.gcs,
      rayAuthTokenFile: target?.rayAuthTokenFile,
      providerId: this.credentials?.providerId ?? 'unregistered',
      nodeManagerPort: this.deps.config.ports.nodeManager,
      nodeIp: target?.nodeIpAddress ?? this.nodeIp,
    };
  }

  /**
   * The way out after an unexpected fault (an unhandled rejection, an uncaught exception): Ray is killed, the manager
   * hears "stopped" so the restarted container takes the provider over at once, and the process exits 1 for the
   * restart policy. A fault while abandoning exits at once.
   */
  async abandon(reason: string, code: ExitCode = ExitCode.forced): Promise<void> {
    const { log, model } = this.deps;
    if (this.abandoning) {
      this.deps.exit(ExitCode.forced);
      return;
    }
    this.abandoning = true;
    log.error({ reason, exitCode: code }, 'stopping Ray and exiting for a restart');
    this.stopping.abort();
    this.heartbeatsDone.abort();
    this.stopSampling();
    this.node?.kill();
    await killRayLeftovers(leftoverKill * 1000);
    model.ray.state = 'stopped';
    model.runningTasks = 0;
    model.setState('stopped');
    await this.finalHeartbeat();
    this.deps.exit(code);
  }

  /** Drains the node (if one runs), then kills whatever Ray left behind. */
  private async stopRay(drainSeconds: number): Promise<void> {
    const { model, log } = this.deps;
    if (this.node?.running) {
      model.ray.state = 'stopping';
      await this.node.stop(drainSeconds + rayForceStop);
    }
    if (this.node) {
      const leftovers = await killRayLeftovers(leftoverKill * 1000);
      if (leftovers.killed > 0) log.info(leftovers, 'killed Ray processes left after the node stopped');
    }
    model.ray.state = 'stopped';
  }

  /** `previous`: the credentials this agent held, sent as proof when it registers the same install again. */
  private async ensureRegistered(previous: Credentials | undefined = this.credentials): Promise<boolean> {
    const { model, config, store, log } = this.deps;
    if (this.credentials && this.credentials.managerBase === config.manager.base) {
      this.markRegistered(this.credentials);
      return true;
    }
    if (!config.token) {
      model.setState('error');
      model.registration.state = 'needs_reregistration';
      model.fail(
        'no_token',
        'not registered and no enrollment token: set AGENT_TOKEN_FILE to a token from the manager',
      );
      log.error('not registered and no enrollment token is configured (AGENT_TOKEN_FILE)');
      return false;
    }
    await this.access.waitForKey(this.stopping.signal);
    if (this.stopping.signal.aborted) return false;
    model.registration.state = 'registering';
    try {
      const credentials = await register(
        this.client,
        store,
        this.registerBody(),
        config.token,
        config.manager.base,
        log,
        this.stopping.signal,
        (error, waitMs) =>
          model.fail(
            'manager_unreachable',
            `registration failed, retrying in ${Math.round(waitMs / 1000)} s: ${error.message}`,
          ),
        undefined,
        { ...(previous ? { current: previous } : {}), onCluster: (cluster) => this.onClusterAccess(cluster) },
      );
      if (!credentials) return false;
      model.clearError('manager_unreachable');
      this.markRegistered(credentials);
      return true;
    } catch (error) {
      const message = (error as Error).message;
      const rejected = error instanceof EnrollmentRejectedError;
      model.registration.state = 'rejected';
      model.setState('error');
      model.fail(rejected ? 'enrollment_rejected' : 'registration_failed', message);
      log.error({ err: message }, 'registration failed');
      // Stay up a moment so the tray can read why, then exit with a code a restart policy can tell apart.
      const code = rejected ? ExitCode.enrollmentRejected : ExitCode.registrationFailed;
      setTimeout(() => void this.deps.statusServer.close().then(() => this.deps.exit(code)), 2_000).unref();
      return false;
    }
  }

  private markRegistered(credentials: Credentials): void {
    const { model } = this.deps;
    this.credentials = credentials;
    model.registration.state = 'registered';
    model.registration.providerId = credentials.providerId;
    model.registration.registeredAt = credentials.registeredAt;
  }

  private registerBody() {
    const { config, model } = this.deps;
    return {
      installId: this.deps.installId,
      hostname: config.providerName ?? os.hostname(),
      cpuCores: os.availableParallelism(),
      memoryBytes: os.totalmem(),
      ipAddress: this.nodeIp,
      versions: { agent: model.agentVersion, ray: model.ray.version, python: model.ray.pythonVersion },
      limits: { cpus: model.limits.cpus, memoryBytes: model.limits.memoryBytes },
      ...this.access.registerFields(),
    };
  }

  private async heartbeatLoop(): Promise<void> {
    const { model, log, store } = this.deps;
    let refusals = 0;
    while (!this.heartbeatsDone.signal.aborted && this.credentials) {
      const outcome = await runHeartbeats(
        this.client,
        model,
        () => ({ providerId: this.credentials?.providerId ?? '', credential: this.credentials?.credential ?? '' }),
        () => this.heartbeatBody(),
        this.bootId,
        log,
        this.heartbeatsDone.signal,
        undefined,
        (accepted, cluster) => {
          if (!accepted) {
            // The manager cannot answer: Ray does not need it to work, so a boot it never refused runs its node.
            if (!this.refused) this.identity.hold();
            return;
          }
          this.onClusterAccess(cluster);
          if (this.refused) log.info('the manager accepts this agent as the provider now');
          this.refused = false;
          refusals = 0;
          this.reregistration.reset();
          model.clearError('identity_in_use');
          this.identity.hold();
        },
      );
      if (outcome.kind === 'stopped') return;
      if (outcome.kind === 'identity_in_use') {
        refusals += 1;
        await this.stepAsideFor(outcome.retryAfterMs, refusals);
        continue;
      }
      if (outcome.kind === 'revoked') {
        log.error('the manager rejected this provider credential: leaving the cluster');
        model.registration.state = 'needs_reregistration';
        model.fail(
          'credential_rejected',
          'the manager no longer accepts this provider; re-register it (remove the state volume and start with a new enrollment token)',
        );
        await this.leaveCluster();
        return;
      }
      // Unknown provider: the manager forgot us. Keep the old credentials aside and register again if we can, not
      // faster than the backoff: a manager that forgets every provider it registers must not be hammered.
      const first = this.reregistration.attempts === 0;
      const backoff = this.reregistration.next();
      const wait = first ? 0 : backoff;
      log.warn({ waitMs: wait }, 'the manager does not know this provider; registering again');
      await sleep(wait, this.heartbeatsDone.signal);
      if (this.heartbeatsDone.signal.aborted) return;
      const keptAt = store.quarantine(store.credentialsPath, 'unknown-provider');
      log.info({ keptAt }, 'old credentials kept aside');
      const previous = this.credentials;
      this.credentials = undefined;
      this.identity.release();
      if (!(await this.ensureRegistered(previous))) {
        await this.leaveCluster();
        return;
      }
      // Rejoin under the new provider ID (its label and resource name it); this stop is not a failure.
      this.rejoinReason = `registered again as ${model.registration.providerId}`;
      if (this.node?.running) await this.node.stop(this.deps.config.drainDeadlineSeconds + rayForceStop);
    }
  }

  /**
   * Another boot holds this provider's identity: a copy of the state volume running elsewhere, or this container's
   * previous run that ended without saying so (`docker kill`, OOM, power loss), whose lease the manager lets run
   * out. Either way Ray must not run here now; try again when the manager says the lease ends.
   */
  private async stepAsideFor(retryAfterMs: number | undefined, refusals: number): Promise<void> {
    const { model, log, config } = this.deps;
    const wasHeld = this.identity.held;
    this.refused = true;
    this.identity.release();
    const wait = Math.min(300_000, Math.max(1_000, retryAfterMs ?? this.deps.model.heartbeat.intervalSeconds * 1000));
    const retryIn = `trying again in ${Math.round(wait / 1000)} s`;
    if (refusals === 1 && !wasHeld) {
      // Most often the previous run of this very container: it needs only to time out.
      model.fail(
        'identity_in_use',
        `identity in use: another agent is already running as this provider, or its last run ended without stopping; ${retryIn}`,
      );
      log.warn({ retryAfterMs: wait }, 'the manager says another agent holds this provider; waiting');
    } else {
      model.fail(
        'identity_in_use',
        `identity in use: another agent is already running as this provider (a copied state volume?); stop one of them, or give this one its own state volume; ${retryIn}`,
      );
      if (refusals <= 2 || refusals % 10 === 0)
        log.error({ refusals }, 'another agent is running as this provider: Ray stays stopped here');
      model.setState('error');
    }
    if (this.node?.running) {
      this.identityLost = true;
      model.setState('error');
      await this.node.stop(config.drainDeadlineSeconds + rayForceStop);
      await killRayLeftovers(leftoverKill * 1000);
    }
    await sleep(wait, this.heartbeatsDone.signal);
  }

  /** Stops Ray without exiting: the status endpoint keeps saying why, and no restart storm follows. */
  private async leaveCluster(): Promise<void> {
    const { model } = this.deps;
    this.stopping.abort();
    this.identity.release();
    await this.stopRay(this.deps.config.drainDeadlineSeconds);
    model.setState('error');
  }

  private heartbeatBody(): Omit<HeartbeatRequest, 'providerId' | 'sentAt' | 'bootId'> {
    const { model } = this.deps;
    return {
      state: model.current,
      rayNode: model.ray.state,
      cpuPercent: Math.min(100, model.usage.cpuPercent),
      memoryBytes: model.usage.memoryBytes,
      memoryPercent: Math.min(100, Math.round((model.usage.memoryBytes / model.limits.memoryBytes) * 1000) / 10),
      activeTasks: model.runningTasks,
      recentErrors: model.ray.recentErrors.slice(-5).map((entry) => entry.message),
      ...this.access.heartbeatFields(),
    };
  }

  private async finalHeartbeat(): Promise<void> {
    const credentials = this.credentials;
    if (!credentials || this.deps.model.registration.state !== 'registered') return;
    const timeout = AbortSignal.timeout(finalHeartbeat * 1000);
    try {
      await this.client.heartbeat(
        {
          ...this.heartbeatBody(),
          providerId: credentials.providerId,
          bootId: this.bootId,
          sentAt: new Date().toISOString(),
        },
        credentials.credential,
        timeout,
      );
    } catch (error) {
      this.deps.log.warn({ err: (error as Error).message }, 'the last heartbeat did not reach the manager');
    }
  }

  /** Joins the cluster and keeps it joined: preflight, `ray start --block`, and rejoin with backoff on loss. */
  private async keepNodeJoined(): Promise<void> {
    const { model, log } = this.deps;
    const signal = this.stopping.signal;
    const backoff = new Backoff(1_000, 30_000);
    let joinedBefore = false;
    while (!signal.aborted) {
      if (this.paused) {
        // Drained on request: the node stays down (heartbeats go on) until the container is stopped.
        await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
        break;
      }
      await this.identity.whenHeld(signal);
      if (signal.aborted) break;
      model.ray.state = joinedBefore ? 'restarting' : 'joining';
      await this.access.whenTunnelUp(signal);
      if (signal.aborted) break;
      const target = this.access.joinTarget();
      // A TCP dial (milliseconds) tells an absent head; the version check (a Python process) runs beside the join.
      const unreachable = await dialGcs(target.gcs);
      if (signal.aborted) break;
      if (needsRejoin(target, this.access.joinTarget())) continue; // the manager moved the cluster meanwhile
      if (unreachable !== undefined) {
        const wait = backoff.next();
        model.fail(
          'head_unreachable',
          `the Ray head at ${formatGcsAddress(target.gcs)} is not reachable (${unreachable}); retrying in ${Math.round(wait / 1000)} s`,
        );
        if (backoff.attempts === 1 || backoff.attempts % 10 === 0)
          log.warn({ detail: unreachable, attempts: backoff.attempts }, 'Ray head not reachable');
        await sleep(wait, signal);
        continue;
      }
      model.clearError('head_unreachable');
      if (!this.identity.held || this.paused) continue; // refused, or drained, while the dial ran
      this.joinedCluster = undefined;
      this.headLost = false;
      if (model.current === 'error') model.setState(joinedBefore ? 'reconnecting' : 'connecting');
      await this.sandboxChecked;
      if (signal.aborted) break;
      const checked = this.checkVersions(target);
      const exit = await this.runNode(target);
      const mismatch = await checked;
      if (signal.aborted) break;
      if (mismatch) {
        await sleep(MISMATCH_RECHECK_MS, signal);
        continue;
      }
      joinedBefore ||= exit.joined;
      if (exit.joined) backoff.reset();
      if (this.paused) continue; // the drain stopped it: not a failure, and not restarted
      if (this.identityLost) {
        // Stepped aside for another boot of this provider; the gate opens again once the manager accepts us.
        this.identityLost = false;
        model.ray.state = 'stopped';
        model.ray.joinedAt = null;
        continue;
      }
      if (this.rejoinReason) {
        log.info({ reason: this.rejoinReason }, 'rejoining the cluster');
        this.rejoinReason = undefined;
        model.setState('reconnecting');
        await killRayLeftovers(leftoverKill * 1000);
        continue;
      }
      model.ray.restarts += 1;
      model.ray.joinedAt = null;
      const reason = exit.lastLines
        .filter((line) => /error|fail|exit|refus|mismatch/i.test(line))
        .slice(-3)
        .join(' | ');
      const message = `the Ray node stopped unexpectedly (exit ${exit.code ?? exit.signal})${reason ? `: ${reason}` : ''}`;
      model.rayError(message);
      model.fail('ray_node_exited', message);
      model.setState('reconnecting');
      log.warn(
        { code: exit.code, signal: exit.signal, lastLines: exit.lastLines.slice(-10) },
        'Ray node exited; rejoining',
      );
      await killRayLeftovers(leftoverKill * 1000);
      await sleep(backoff.next(), signal);
    }
  }

  /**
   * Ray refuses a node of another Ray version by itself, in a traceback; this check says why in one sentence, and
   * stops a node that would join a cluster whose Python minor version differs. True on a mismatch.
   */
  private async checkVersions(target: JoinTarget): Promise<boolean> {
    const { model, log } = this.deps;
    const preflight = await preflightCluster(this.deps.python, target.gcs, 5, target.rayAuthTokenFile);
    if (preflight.kind === 'unreachable') return false; // the node's own join decides; checkHead looks again
    model.ray.clusterVersion = preflight.info.clusterRayVersion ?? null;
    model.ray.clusterPythonVersion = preflight.info.clusterPythonVersion ?? null;
    if (preflight.kind === 'ok') {
      this.joinedCluster = preflight.info.clusterId;
      model.clearError('version_mismatch');
      return false;
    }
    this.node?.kill();
    model.ray.state = 'failed';
    model.setState('error');
    model.fail('version_mismatch', preflight.message);
    log.error({ detail: preflight.message }, 'refusing to join: version mismatch');
    return true;
  }

  /** The CPUs Ray may schedule here: none when the person accepts sandboxed work only (the gvisor slots remain). */
  private offeredCpus(cpus: number): number {
    return this.deps.config.acceptWork === 'sandboxed' ? 0 : cpus;
  }

  /** Runs beside registration: a sandbox start costs seconds, which the first join would otherwise wait for. */
  private async checkSandbox(): Promise<SandboxCheck> {
    const { model, log, config } = this.deps;
    const check = await checkSandbox(this.deps.python);
    if (check.kind === 'ready') {
      const slots = sandboxSlots(this.resources.numCpus);
      model.sandbox = {
        ...model.sandbox,
        state: 'ready',
        kernel: check.kernel,
        startSeconds: check.startSeconds,
        slots,
      };
      log.info({ kernel: check.kernel, startSeconds: check.startSeconds, slots }, 'gVisor sandboxes run here');
    } else {
      model.sandbox = { ...model.sandbox, state: 'unavailable', reason: check.reason, slots: 0 };
      if (config.acceptWork === 'sandboxed') {
        model.warn(
          `only sandboxed work is accepted, but no gVisor sandbox can start here, so the node takes no work: ${check.reason}`,
        );
        log.warn({ reason: check.reason }, 'sandboxed work only, and no gVisor sandboxes here: the node takes no work');
      } else log.warn({ reason: check.reason }, 'no gVisor sandboxes on this node; ordinary work goes on');
    }
    return check;
  }

  private runNode(
    target: JoinTarget,
  ): Promise<{ joined: boolean; code: number | null; signal: string | null; lastLines: string[] }> {
    const { model, config, log } = this.deps;
    const resources = this.resources;
    this.nodeResources = resources;
    const offered = { ...resources, numCpus: this.offeredCpus(resources.numCpus) };
    // The slots follow the limits a (re)started node gets; a live resize changes only CPU and memory.
    if (model.sandbox.state === 'ready') model.sandbox.slots = sandboxSlots(resources.numCpus);
    const providerId = this.credentials?.providerId ?? 'unregistered';
    const node = new RayNode({
      rayBin: this.deps.rayBin,
      gcs: target.gcs,
      resources: offered,
      ports: config.ports,
      nodeIpAddress: target.nodeIpAddress,
      providerId,
      drainDeadlineSeconds: config.drainDeadlineSeconds,
      gcsReconnectTimeoutSeconds: config.gcsReconnectTimeoutSeconds,
      rayAuthTokenFile: target.rayAuthTokenFile,
      sandboxSlots: model.sandbox.slots,
    });
    this.node = node;
    this.joined = target;
    let joined = false;
    return new Promise((resolve) => {
      node.on('joined', () => {
        joined = true;
        model.ray.state = 'joined';
        model.ray.joinedAt = new Date();
        model.clearError('ray_node_exited');
        if (model.current !== 'draining' && model.current !== 'error') model.setState('contributing');
        log.info({ providerId, gcs: formatGcsAddress(target.gcs) }, 'Ray node joined the cluster');
      });
      node.on('line', (line) => log.debug({ ray: line }, 'ray'));
      node.on('exit', (exit) => resolve({ joined, code: exit.code, signal: exit.signal, lastLines: exit.lastLines }));
      node.start();
    });
  }

  /** Keeps the manager's latest ClusterAccess; a node joined the old way leaves and joins the new way. */
  private onClusterAccess(cluster: ClusterAccess | undefined): void {
    const reason = this.access.accept(cluster);
    if (!reason || !this.node?.running) return;
    this.rejoinReason = reason;
    void this.node.stop(this.deps.config.drainDeadlineSeconds + rayForceStop);
  }

  /**
   * While joined, a head that stops answering turns the state to reconnecting at once (Ray itself notices only
   * after its reconnect timeout). When it answers again, its cluster ID tells whether it is the same cluster (GCS
   * fault tolerance kept our node) or a new one, in which case the orphaned node is replaced right away.
   */
  private async checkHead(): Promise<void> {
    const { model, log } = this.deps;
    const gcs = this.joined?.gcs;
    // Over a tunnel that is down the head cannot answer; the tunnel's own sentence says why.
    if (this.checkingHead || !gcs || this.access.tunnelDown()) return;
    // The raylet's own GCS connection is the cheap sign of a live head (no packet sent); it is dialled anyway when
    // that connection is gone, while the head is lost, and once a minute (a silent path keeps a dead connection).
    const dial = this.headLost || Date.now() - this.lastHeadDialAt >= HEAD_DIAL_MS || !gcsConnected(gcs.port);
    if (!dial) return;
    this.checkingHead = true;
    this.lastHeadDialAt = Date.now();
    try {
      const reachable = await probeGcs(gcs);
      if (model.ray.state !== 'joined') return;
      if (!reachable) {
        if (!this.headLost) log.warn('Ray head stopped answering');
        this.headLost = true;
        model.fail(
          'head_unreachable',
          `the Ray head at ${formatGcsAddress(gcs)} stopped answering; waiting for it to come back`,
        );
        if (model.current === 'contributing') model.setState('reconnecting');
        return;
      }
      if (!this.headLost) return;
      const preflight = await preflightCluster(this.deps.python, gcs, 5, this.joined?.rayAuthTokenFile);
      if (preflight.kind === 'unreachable') return;
      this.headLost = false;
      model.clearError('head_unreachable');
      if (preflight.info.clusterId && preflight.info.clusterId !== this.joinedCluster) {
        log.warn('the Ray head came back as a new cluster: rejoining');
        this.node?.kill();
      } else if (model.current === 'reconnecting') {
        model.setState('contributing');
      }
    } finally {
      this.checkingHead = false;
    }
  }

  /** A /status read: sample at the watched cadence for a while, and at once if the last sample is stale. */
  statusRead(): void {
    this.lastReadAt = Date.now();
    if (this.tick && !this.samplingStopped && Date.now() - this.lastSampleAt >= WATCHED_SAMPLE_MS) {
      clearTimeout(this.sampler);
      // Not on the request's path: this answer carries the last sample, the next one a fresh sample.
      this.sampler = setTimeout(this.tick, 0);
    }
  }

  private stopSampling(): void {
    this.samplingStopped = true;
    clearTimeout(this.sampler);
  }

  private nextSampleMs(): number {
    const watched = Date.now() - this.lastReadAt < WATCHED_FOR_MS;
    return watched || this.deps.model.current !== 'contributing' ? WATCHED_SAMPLE_MS : IDLE_SAMPLE_MS;
  }

  private startSampling(): void {
    const { model } = this.deps;
    const usage = new UsageSampler(cgroupReader(), model.limits.cpus);
    this.usage = usage;
    const logs = new RayLogWatcher('/tmp/ray/session_latest/logs', (line) => model.rayError(line));
    const tick = () => {
      this.lastSampleAt = Date.now();
      const counted = this.tasks.count();
      const live = model.ray.state === 'joined' || model.ray.state === 'stopping';
      model.runningTasks = live ? counted.running : 0;
      model.tasksByName = live ? tasksByName(counted.names) : [];
      model.tasksCompleted = this.tasks.completed;
      model.sandbox.running = counted.sandboxes;
      model.usage = usage.sample();
      logs.poll();
      this.access.refresh();
      const lost = this.access.namespaceLost();
      if (lost) {
        void this.abandon(
          `left in the network namespace of a tunnel container that restarted (${lost})`,
          ExitCode.tunnelNamespaceGone,
        );
        return;
      }
      if (model.ray.state === 'joined') {
        this.access.watchJoined(() => !this.headLost);
        void this.checkHead();
      }
      if (!this.samplingStopped) this.sampler = setTimeout(tick, this.nextSampleMs());
    };
    this.tick = tick;
    tick();
  }
}
