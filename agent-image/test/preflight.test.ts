import { describe, expect, it } from 'vitest';
import { versionMismatch } from '../src/ray/preflight.js';

const ours = { rayVersion: '2.58.0', pythonVersion: '3.12.7' };

describe('versionMismatch', () => {
  it.each([
    ['the same Ray and Python', { clusterRayVersion: '2.58.0', clusterPythonVersion: '3.12.7' }],
    ['another Python patch release', { clusterRayVersion: '2.58.0', clusterPythonVersion: '3.12.1' }],
    ['a cluster that did not say', { clusterRayVersion: null, clusterPythonVersion: null }],
    ['a cluster that said nothing at all', {}],
  ])('accepts %s', (_name, cluster) => {
    expect(versionMismatch({ ...ours, ...cluster })).toBeUndefined();
  });

  it('refuses another Ray version, naming both and the image to use', () => {
    const message = versionMismatch({ ...ours, clusterRayVersion: '2.57.1', clusterPythonVersion: '3.12.7' });
    expect(message).toContain('Ray 2.57.1');
    expect(message).toContain('Ray 2.58.0');
    expect(message).toMatch(/use the agent image built for Ray 2\.57\.1/);
  });

  it('refuses another Python minor version, naming both', () => {
    const message = versionMismatch({ ...ours, clusterRayVersion: '2.58.0', clusterPythonVersion: '3.11.9' });
    expect(message).toContain('Python 3.11.9');
    expect(message).toContain('Python 3.12.7');
    expect(message).toMatch(/same Python minor version/);
  });

  it('does not mistake 3.1 for 3.12', () => {
    expect(versionMismatch({ rayVersion: '2.58.0', pythonVersion: '3.12.0', clusterPythonVersion: '3.1.0' })).toMatch(
      /Python 3\.1\.0/,
    );
  });
});
