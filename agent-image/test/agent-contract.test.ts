import { readFileSync } from 'node:fs';
import {
  AGENT_ENV,
  type AgentEnvName,
  type AgentEnvVar,
  CONTAINER_STATUS_PORT,
  CONTROLLER_SET_ENV,
  MAX_SLOW_OBJECT_STORE_BYTES,
  MIN_MEMORY_BYTES,
  MIN_OBJECT_STORE_BYTES,
  MIN_RAY_MEMORY_BYTES,
  objectStoreRoomInShm,
  rayCpusFor,
  rayMemoryPlan,
  STATE_DIR,
  shmBytesFor,
  tmpfsBytesFor,
} from '@ray-agent/protocol';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config/agent-config.js';
import { rayResources } from '../src/limits/ray-resources.js';

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

/**
 * Memory limits to try: every 8 MiB from the minimum to 4 GiB (the app's slider region, odd sizes included), then
 * every 1 GiB + 1 byte... up to 256 GiB, so rounding is tried at sizes that are not whole MiB.
 */
const MEMORY_SIZES = [
  ...Array.from({ length: (4 * GiB - MIN_MEMORY_BYTES) / (8 * MiB) + 1 }, (_, i) => MIN_MEMORY_BYTES + i * 8 * MiB),
  ...Array.from({ length: 253 }, (_, i) => (4 + i) * GiB + 4093 * i + 1),
  1_000_000_000,
  1_500_000_001,
  3 * GiB + 1,
];

describe("the controller's /dev/shm and the agent's object store agree", () => {
  it('the /dev/shm the controller gives lets the agent plan its full object store, without a warning', () => {
    for (const memoryBytes of MEMORY_SIZES) {
      const shmBytes = shmBytesFor(memoryBytes);
      expect(shmBytes % MiB, `${memoryBytes}`).toBe(0);
      const plan = rayMemoryPlan(memoryBytes, shmBytes, tmpfsBytesFor(memoryBytes));
      expect(plan.cut, `${memoryBytes}`).toBe('full');
      expect(plan.objectStoreIn).toBe('shm');
      expect(plan.objectStoreBytes).toBe(plan.fullObjectStoreBytes);
      expect(plan.objectStoreBytes).toBeLessThanOrEqual(objectStoreRoomInShm(shmBytes));
      const resources = rayResources({ cpus: 2, memoryBytes, source: 'cgroup', shmBytes });
      expect(resources.warnings, `${memoryBytes}`).toEqual([]);
      // Not much more than needed: one MiB of rounding at most.
      expect(objectStoreRoomInShm(shmBytes - MiB)).toBeLessThan(plan.objectStoreBytes);
    }
  });

  it('the planned store, Ray memory and reserve fit inside the limit, for any /dev/shm and /tmp', () => {
    const shmFor = (memoryBytes: number) => [
      undefined,
      0,
      64 * MiB,
      83 * MiB,
      84 * MiB,
      256 * MiB,
      Math.floor(memoryBytes / 7),
      shmBytesFor(memoryBytes) - 1,
      shmBytesFor(memoryBytes),
      4 * memoryBytes,
    ];
    const tmpFor = (memoryBytes: number) => [undefined, 0, 100 * MiB, tmpfsBytesFor(memoryBytes), 2 * GiB, 100 * GiB];
    for (const memoryBytes of MEMORY_SIZES.filter((_, i) => i % 7 === 0))
      for (const shmBytes of shmFor(memoryBytes))
        for (const tmpFreeBytes of tmpFor(memoryBytes)) {
          const plan = rayMemoryPlan(memoryBytes, shmBytes, tmpFreeBytes);
          const what = JSON.stringify({ memoryBytes, shmBytes, tmpFreeBytes, plan });
          expect(plan.reserveBytes + plan.objectStoreBytes + plan.rayMemoryBytes, what).toBeLessThanOrEqual(
            memoryBytes,
          );
          for (const figure of [plan.reserveBytes, plan.objectStoreBytes, plan.rayMemoryBytes])
            expect(Number.isInteger(figure), what).toBe(true);
          expect(plan.objectStoreBytes, what).toBeGreaterThanOrEqual(MIN_OBJECT_STORE_BYTES);
          expect(plan.objectStoreBytes, what).toBeLessThanOrEqual(plan.fullObjectStoreBytes);
          expect(plan.rayMemoryBytes, what).toBeGreaterThanOrEqual(MIN_RAY_MEMORY_BYTES);
          // Ray's own rule decides where the store goes; outside /dev/shm it refuses more than 10 GB.
          if (plan.objectStoreIn === 'shm')
            expect(shmBytes ?? Number.POSITIVE_INFINITY).toBeGreaterThanOrEqual(plan.objectStoreBytes);
          else expect(plan.objectStoreBytes, what).toBeLessThanOrEqual(MAX_SLOW_OBJECT_STORE_BYTES);
        }
  });

  it('a /tmp that holds the store gets at most half of its free space (Ray logs and sessions need the rest)', () => {
    for (const memoryBytes of [2 * GiB, 8 * GiB, 24 * GiB]) {
      const tmpFreeBytes = 1 * GiB;
      const plan = rayMemoryPlan(memoryBytes, 64 * MiB, tmpFreeBytes);
      expect(plan.objectStoreIn).toBe('tmp');
      expect(plan.objectStoreBytes).toBeLessThanOrEqual(tmpFreeBytes / 2);
    }
  });

  it('below the minimum the plan still fits, by giving up reserve, and says so', () => {
    for (const memoryBytes of [160 * MiB, 256 * MiB, 300 * MiB, 511 * MiB]) {
      const plan = rayMemoryPlan(memoryBytes, undefined);
      expect(plan.belowMinimum).toBe(true);
      expect(plan.reserveBytes + plan.objectStoreBytes + plan.rayMemoryBytes).toBeLessThanOrEqual(memoryBytes);
    }
    expect(rayMemoryPlan(MIN_MEMORY_BYTES, undefined).belowMinimum).toBe(false);
  });

  it('tmpfsBytesFor: half the memory, at most 2 GiB, whole MiB', () => {
    for (const memoryBytes of MEMORY_SIZES) {
      const tmp = tmpfsBytesFor(memoryBytes);
      expect(tmp % MiB).toBe(0);
      expect(tmp).toBeLessThanOrEqual(Math.min(2 * GiB, memoryBytes / 2));
      expect(tmp).toBeGreaterThan(Math.min(2 * GiB, memoryBytes / 2) - MiB);
    }
  });

  it('Ray schedules whole CPUs, at least one', () => {
    expect([0.5, 1, 1.5, 1.99, 2 - 1e-12, 2, 2.5, 3.99, 16].map(rayCpusFor)).toEqual([1, 1, 1, 1, 2, 2, 2, 3, 16]);
  });
});

describe('the environment table', () => {
  const rows = Object.entries(AGENT_ENV) as Array<[AgentEnvName, AgentEnvVar]>;

  it('names each row by its key, with a meaning and an example, and whole-number defaults inside their bounds', () => {
    for (const [key, row] of rows) {
      expect(row.name).toBe(key);
      expect(row.meaning.length).toBeGreaterThan(5);
      expect(row.example.length).toBeGreaterThan(0);
      if (row.min !== undefined || row.max !== undefined) {
        expect(typeof row.default, key).toBe('number');
        expect(row.default as number).toBeGreaterThanOrEqual(row.min ?? Number.NEGATIVE_INFINITY);
        expect(row.default as number).toBeLessThanOrEqual(row.max ?? Number.POSITIVE_INFINITY);
      }
    }
    expect(AGENT_ENV.DRAIN_DEADLINE.default).toBe(25);
    expect(AGENT_ENV.STATUS_PORT.default).toBe(CONTAINER_STATUS_PORT);
    expect(AGENT_ENV.STATE_DIR.default).toBe(STATE_DIR);
  });

  it('marks what the controller (or the image) sets itself', () => {
    expect([...CONTROLLER_SET_ENV].sort()).toEqual(
      [
        'AGENT_TOKEN',
        'AGENT_TOKEN_FD',
        'AGENT_TOKEN_FILE',
        'ACCEPT_WORK',
        'DRAIN_DEADLINE',
        'MANAGER_CA_FILE',
        'MANAGER_URL',
        'RAY_HEAD',
        'SANDBOX_NETWORK',
        'STATE_DIR',
        'STATUS_PORT',
        'TINI_SUBREAPER',
      ].sort(),
    );
  });

  const MINIMAL = { RAY_HEAD: 'ray://head:10001', MANAGER_URL: 'https://m.test', AGENT_TOKEN: 'tok_0123456789abcdef' };

  it("is what the agent's config reads: each default when unset", () => {
    const config = loadConfig(MINIMAL);
    expect(config.gcs.port).toBe(AGENT_ENV.RAY_GCS_PORT.default);
    expect(config.statusPort).toBe(AGENT_ENV.STATUS_PORT.default);
    expect(config.statusHost).toBe(AGENT_ENV.STATUS_HOST.default);
    expect(config.heartbeatIntervalSeconds).toBe(AGENT_ENV.HEARTBEAT_INTERVAL.default);
    expect(config.drainDeadlineSeconds).toBe(AGENT_ENV.DRAIN_DEADLINE.default);
    expect(config.gcsReconnectTimeoutSeconds).toBe(AGENT_ENV.RAY_GCS_RECONNECT_TIMEOUT.default);
    expect(config.stateDir).toBe(AGENT_ENV.STATE_DIR.default);
    expect(config.logLevel).toBe(AGENT_ENV.LOG_LEVEL.default);
    expect(config.ports).toEqual({
      nodeManager: AGENT_ENV.RAY_NODE_MANAGER_PORT.default,
      objectManager: AGENT_ENV.RAY_OBJECT_MANAGER_PORT.default,
      minWorker: AGENT_ENV.RAY_MIN_WORKER_PORT.default,
      maxWorker: AGENT_ENV.RAY_MAX_WORKER_PORT.default,
      metricsExport: AGENT_ENV.RAY_METRICS_EXPORT_PORT.default,
      dashboardAgentGrpc: AGENT_ENV.RAY_DASHBOARD_AGENT_GRPC_PORT.default,
      dashboardAgentListen: AGENT_ENV.RAY_DASHBOARD_AGENT_LISTEN_PORT.default,
      runtimeEnvAgent: AGENT_ENV.RAY_RUNTIME_ENV_AGENT_PORT.default,
    });
  });

  it("is what the agent's config reads: each whole-number variable's bounds, in one line with the table's example", () => {
    for (const [name, row] of rows) {
      if (row.min === undefined || row.max === undefined) continue;
      for (const bad of [row.min - 1, row.max + 1]) {
        let error: unknown;
        try {
          loadConfig({ ...MINIMAL, [name]: String(bad) });
        } catch (caught) {
          error = caught;
        }
        expect(error, `${name}=${bad}`).toBeInstanceOf(ConfigError);
        expect((error as ConfigError).variable).toBe(name);
        expect((error as ConfigError).message).toContain(`from ${row.min} to ${row.max}`);
        expect((error as ConfigError).message).toContain(`(e.g. ${name}=${row.example})`);
      }
    }
  });

  it('agrees with the image: its ENV, its state directory and the port it exposes', () => {
    const dockerfile = readFileSync(new URL('../Dockerfile', import.meta.url), 'utf8');
    expect(dockerfile).toContain(`STATE_DIR=${STATE_DIR}`);
    expect(dockerfile).toContain(`STATUS_PORT=${CONTAINER_STATUS_PORT}`);
    expect(dockerfile).toContain(`TINI_SUBREAPER=${AGENT_ENV.TINI_SUBREAPER.default}`);
    expect(dockerfile).toMatch(new RegExp(`^VOLUME ${STATE_DIR}$`, 'm'));
    expect(dockerfile).toMatch(new RegExp(`^EXPOSE ${CONTAINER_STATUS_PORT}$`, 'm'));
  });

  it("agrees with the README's table of variables wherever the README gives a default", () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    let checked = 0;
    for (const line of readme.split('\n')) {
      const cells = line.split('|').map((cell) => cell.trim());
      if (cells.length < 4 || !cells[1]?.startsWith('`')) continue;
      const names = [...(cells[1] ?? '').matchAll(/`([A-Z_]+)`/g)].map((m) => m[1] as string);
      const defaults = [...(cells[2] ?? '').matchAll(/`([^`]+)`/g)].map((m) => m[1] as string);
      if (names.length === 0 || defaults.length !== names.length) continue;
      names.forEach((name, i) => {
        const row = (AGENT_ENV as Record<string, AgentEnvVar>)[name];
        expect(row, `README documents ${name}, which the table lacks`).toBeDefined();
        expect(String(row?.default), name).toBe(defaults[i]);
        checked += 1;
      });
    }
    expect(checked).toBeGreaterThanOrEqual(15);
  });
});
