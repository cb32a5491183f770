import { describe, expect, it } from 'vitest';
import { createLogger } from '../src/logger.js';
import { LogCapture } from './helpers.js';

describe('createLogger', () => {
  it('writes JSON and censors secret-bearing fields even if a caller passes them', () => {
    const capture = new LogCapture();
    const log = createLogger({ destination: capture });
    log.info(
      {
        req: { headers: { authorization: 'Bearer leaked-1' } },
        headers: { authorization: 'Bearer leaked-2' },
        token: 'leaked-3',
        credential: 'leaked-4',
        body: { credential: 'leaked-5', token: 'leaked-6' },
        providerId: 'prv-abcdefabcdef',
      },
      'hello',
    );
    const [line] = capture.lines;
    const entry = JSON.parse(line ?? '{}') as Record<string, unknown>;
    expect(entry.msg).toBe('hello');
    expect(entry.providerId).toBe('prv-abcdefabcdef');
    expect(line).not.toMatch(/leaked/);
  });
});
