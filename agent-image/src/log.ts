import pino from 'pino';

/** JSON logs to stdout. Secrets are redacted by key wherever they might be attached to a log object. */
export function createLogger(level: string, destination?: pino.DestinationStream) {
  const options: pino.LoggerOptions<never> = {
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
  };
  // A destination lets tests read exactly what the agent would print.
  return destination ? pino(options, destination) : pino(options);
}
export type Logger = ReturnType<typeof createLogger>;
