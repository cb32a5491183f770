import pino from 'pino';

/** JSON logs to stdout. Secrets are redacted by key wherever they might be attached to a log object. */
export function createLogger(level: string) {
  return pino({
    level,
    base: { component: 'ray-agent' },
    redact: {
      paths: [
        'token',
        'credential',
        'authorization',
        '*.token',
        '*.credential',
        '*.authorization',
        'headers.authorization',
      ],
      censor: '[redacted]',
    },
    timestamp: pino.stdTimeFunctions.isoTime,
  });
}
export type Logger = ReturnType<typeof createLogger>;
