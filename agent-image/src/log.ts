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
  // A destination lets tests read exactly what the agent would print. Stdout is written synchronously: the agent
  // logs little, and an exit right after a line (a fault, a refusal) must neither drop nor reorder it.
  return pino(options, destination ?? pino.destination({ dest: 1, sync: true }));
}
export type Logger = ReturnType<typeof createLogger>;
