import { HeartbeatRequest, RegisterRequest } from '@ray-agent/protocol';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Store } from '../src/store.js';
import { BOOT_ID, heartbeatBody, registerBody, tempDir } from './helpers.js';

let tmp: ReturnType<typeof tempDir>;
let file: string;
let store: Store;
/** Another connection to the file: what a crash would leave, and what the CLI reads. */
let disk: Database.Database;

const OTHER_BOOT = 'b3c5e7f9-1b2d-4f6a-8c0e-2d4f6a8c0e1c';
const hb = (providerId: string, overrides: Record<string, unknown> = {}) =>
  HeartbeatRequest.parse(heartbeatBody(providerId, overrides));
const onDisk = (id: string) =>
  disk.prepare('SELECT heartbeats, last_state, active_tasks, last_boot_id FROM providers WHERE id = ?').get(id) as {
    heartbeats: number;
    last_state: string | null;
    active_tasks: number;
    last_boot_id: string | null;
  };

function register(n = 1): string[] {
  return Array.from({ length: n }, (_, i) => {
    const req = RegisterRequest.parse(registerBody({ installId: crypto.randomUUID(), hostname: `h-${i}` }));
    return store.register(req, null).providerId;
  });
}

beforeEach(() => {
  tmp = tempDir('manager-batch-');
  file = `${tmp.dir}/m.db`;
  store = new Store(file, { heartbeatFlushMs: 100 });
  disk = new Database(file, { readonly: true });
});
afterEach(() => {
  disk.close();
  store.close();
  tmp.remove();
});

describe('batched heartbeat writes', () => {
  it('keeps a same-boot heartbeat in memory, shows it to this process, and writes it on the timer', async () => {
    const [id = ''] = register();
    const t = Date.now();
    expect(store.acceptHeartbeat(hb(id), 10, new Date(t))).toMatchObject({ kind: 'accepted', reason: 'first_boot' });
    // A new holder is written at once.
    expect(onDisk(id)).toMatchObject({ heartbeats: 1, last_boot_id: BOOT_ID });
    expect(store.acceptHeartbeat(hb(id, { activeTasks: 7 }), 10, new Date(t + 10))).toMatchObject({
      reason: 'same_boot',
    });
    expect(store.acceptHeartbeat(hb(id, { activeTasks: 9 }), 10, new Date(t + 20))).toMatchObject({
      reason: 'same_boot',
    });
    expect(store.pendingHeartbeats).toBe(1);
    expect(onDisk(id)).toMatchObject({ heartbeats: 1, active_tasks: 3 });
    // The lease is decided on the newest heartbeat, pending or not: another boot is refused.
    expect(store.acceptHeartbeat(hb(id, { bootId: OTHER_BOOT }), 10, new Date(t + 30)).kind).toBe('held');
    const deadline = Date.now() + 10_000;
    while (onDisk(id).heartbeats < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    // Both pending heartbeats counted, the newest one's fields kept.
    expect(onDisk(id)).toMatchObject({ heartbeats: 3, active_tasks: 9 });
    expect(store.pendingHeartbeats).toBe(0);
  });

  it('writes a `stopped` heartbeat at once: the lease must not forget a stop', () => {
    const [id = ''] = register();
    const t = Date.now();
    store.acceptHeartbeat(hb(id), 10, new Date(t));
    store.acceptHeartbeat(hb(id, { state: 'stopped' }), 10, new Date(t + 10));
    expect(onDisk(id)).toMatchObject({ heartbeats: 2, last_state: 'stopped' });
    expect(store.pendingHeartbeats).toBe(0);
  });

  it('loses at most the pending batch in a crash, and close() writes it', () => {
    const ids = register(600);
    const t = Date.now();
    for (const id of ids) store.acceptHeartbeat(hb(id), 10, new Date(t));
    for (const id of ids) store.acceptHeartbeat(hb(id, { activeTasks: 1 }), 10, new Date(t + 1));
    expect(store.pendingHeartbeats).toBe(600);
    // Not written yet: a kill -9 now leaves the first heartbeat of each, which the next one replaces.
    expect(onDisk(ids[0] ?? '')).toMatchObject({ heartbeats: 1, active_tasks: 3 });
    store.close();
    for (const id of ids) expect(onDisk(id)).toMatchObject({ heartbeats: 2, active_tasks: 1 });
  });

  it('is write-through without heartbeatFlushMs (the CLI, and library callers)', () => {
    store.close();
    store = new Store(file);
    const [id = ''] = register();
    store.acceptHeartbeat(hb(id), 10);
    store.acceptHeartbeat(hb(id, { activeTasks: 5 }), 10);
    expect(onDisk(id)).toMatchObject({ heartbeats: 2, active_tasks: 5 });
  });
});
