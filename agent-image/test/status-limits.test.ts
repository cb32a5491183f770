import { StatusDocument } from '@ray-agent/protocol';
import { describe, expect, it } from 'vitest';
import { rayResources } from '../src/limits/ray-resources.js';
import { StatusModel } from '../src/status/status-model.js';

const GiB = 1024 ** 3;

function model(): StatusModel {
  const resources = rayResources({ cpus: 2.5, memoryBytes: 4 * GiB, source: 'cgroup', shmBytes: 64 * 1024 ** 2 });
  return new StatusModel('1.0.0', 'head:6379', 'https://m.test', {
    cpus: 2.5,
    memoryBytes: 4 * GiB,
    objectStoreBytes: resources.objectStoreBytes,
    shmBytes: 64 * 1024 ** 2,
    source: 'cgroup',
    rayCpus: resources.numCpus,
    rayMemoryBytes: resources.memoryBytes,
    objectStoreIn: resources.plan.objectStoreIn,
  });
}

describe("the status document's limits", () => {
  it('carry what Ray uses beside the limit: whole CPUs, its memory, where the object store lives', () => {
    const limits = StatusDocument.parse(model().snapshot()).limits;
    expect(limits.cpus).toBe(2.5);
    expect(limits.rayCpus).toBe(2);
    expect(limits.objectStoreIn).toBe('tmp');
    expect(limits.objectStoreBytes + (limits.rayMemoryBytes ?? 0)).toBeLessThanOrEqual(4 * GiB);
  });

  it('still validate from an agent that predates those figures (same schemaVersion), and a newer one with more', () => {
    const { rayCpus: _c, rayMemoryBytes: _m, objectStoreIn: _o, ...older } = model().snapshot().limits;
    const document = model().snapshot();
    expect(StatusDocument.safeParse({ ...document, limits: older }).success).toBe(true);
    expect(StatusDocument.safeParse({ ...document, limits: { ...document.limits, gpus: 1 } }).success).toBe(true);
    expect(StatusDocument.safeParse({ ...document, limits: { ...document.limits, rayCpus: 2.5 } }).success).toBe(false);
  });
});
