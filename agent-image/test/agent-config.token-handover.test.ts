/**
 * Issue 8, item 2: the image's entrypoint moves AGENT_TOKEN out of the environment (Ray tasks, same uid, can read
 * /proc/*\/environ) and hands it to the agent on an inherited descriptor named by AGENT_TOKEN_FD. The agent reads it
 * to the end and closes it, so no process it starts inherits the descriptor. (The real pipe through the real
 * entrypoint is in e2e/secrets.test.ts.)
 */
import { fstatSync, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config/agent-config.js';
import { tempDir } from './helpers.js';

const TOKEN = 'enroll_handover_0123456789abcdefghijklmnopq';
const BASE = { RAY_HEAD: 'head.test:6379', MANAGER_URL: 'https://manager.test/api/register' };

/** A descriptor holding `content`, as the entrypoint's here-document gives one. */
function descriptorWith(content: string): number {
  const file = join(tempDir('token-fd-'), 'token');
  writeFileSync(file, content);
  return openSync(file, 'r');
}

function isOpen(fd: number): boolean {
  try {
    fstatSync(fd);
    return true;
  } catch {
    return false;
  }
}

function configError(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('AGENT_TOKEN_FD', () => {
  it('reads the token (without the here-document newline) and closes the descriptor', () => {
    const fd = descriptorWith(`${TOKEN}\n`);
    expect(loadConfig({ ...BASE, AGENT_TOKEN_FD: String(fd) }).token).toBe(TOKEN);
    expect(isOpen(fd)).toBe(false);
  });

  it('an empty hand-over (AGENT_TOKEN set but empty) is no token, as an empty AGENT_TOKEN is', () => {
    const fd = descriptorWith('\n');
    expect(loadConfig({ ...BASE, AGENT_TOKEN_FD: String(fd) }).token).toBeUndefined();
    expect(isOpen(fd)).toBe(false);
  });

  it('is checked like AGENT_TOKEN, never echoing the token', () => {
    const fd = descriptorWith('PLANTED has spaces in it, long enough\n');
    const error = configError({ ...BASE, AGENT_TOKEN_FD: String(fd) });
    expect(error.variable).toBe('AGENT_TOKEN');
    expect(error.message).toMatch(/contains spaces or control characters/);
    expect(error.message).not.toContain('PLANTED');
    expect(isOpen(fd)).toBe(false);
  });

  it('with AGENT_TOKEN_FILE too is the same conflict as AGENT_TOKEN with the file', () => {
    const fd = descriptorWith(TOKEN);
    const file = join(tempDir('token-file-'), 'agent-token');
    writeFileSync(file, TOKEN);
    const error = configError({ ...BASE, AGENT_TOKEN_FD: String(fd), AGENT_TOKEN_FILE: file });
    expect(error.message).toMatch(/^AGENT_TOKEN: and AGENT_TOKEN_FILE are both set/);
    expect(isOpen(fd)).toBe(false);
  });

  it.each([
    ['2', /"2" is not a file descriptor above 2/],
    ['three', /"three" is not a file descriptor above 2/],
    ['987', /descriptor 987 cannot be read \(EBADF\)/],
  ])('names the variable for AGENT_TOKEN_FD=%s', (value, problem) => {
    const error = configError({ ...BASE, AGENT_TOKEN_FD: value });
    expect(error.variable).toBe('AGENT_TOKEN_FD');
    expect(error.message).toMatch(problem);
    expect(error.message).toMatch(/set by the image entrypoint/);
  });
});
