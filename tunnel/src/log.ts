import pino from 'pino';

/** JSON logs to stdout, written synchronously so a line right before an exit is neither lost nor reordered. */
export function createLogger(component: string, level = 'info', destination?: pino.DestinationStream) {
  return pino(
    {
      level,
      base: { component },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: ['token', '*.token', 'authorization'],
    },
    destination ?? pino.destination({ dest: 1, sync: true }),
  );
}
export type Logger = pino.Logger;
