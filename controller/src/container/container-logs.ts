import { Readable, Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { StringDecoder } from 'node:string_decoder';
import type Dockerode from 'dockerode';

export type LogSource = 'stdout' | 'stderr';

export interface LogOptions {
  /** Lines from the end to start with; 'all' for everything. Default 100. */
  tail?: number | 'all';
  /** Keep streaming new lines until stopped. */
  follow?: boolean;
  timestamps?: boolean;
}

export interface LogFollow {
  /** Stops reading; safe to call more than once. */
  stop: () => void;
  /** Settles when the stream ends: at once for a non-follow read, when the container stops or on stop(). */
  ended: Promise<void>;
}

/**
 * Reads a container's log as lines, demultiplexed into stdout and stderr (a container without a TTY interleaves
 * both in one stream with 8-byte frame headers).
 */
export async function readLogs(
  container: Dockerode.Container,
  options: LogOptions,
  onLine: (line: string, source: LogSource) => void,
): Promise<LogFollow> {
  const follow = options.follow ?? false;
  const abort = new AbortController();
  const base = {
    stdout: true,
    stderr: true,
    // The API takes a number or "all"; the typings know only numbers.
    tail: (options.tail ?? 100) as number,
    timestamps: options.timestamps ?? false,
    abortSignal: abort.signal,
  };
  // dockerode returns a stream when following and the whole log as one Buffer otherwise.
  const raw: NodeJS.ReadableStream | Buffer = follow
    ? await container.logs({ ...base, follow: true })
    : await container.logs({ ...base, follow: false });
  const input = Buffer.isBuffer(raw) ? Readable.from([raw]) : raw;
  const stdout = lineSink('stdout', onLine);
  const stderr = lineSink('stderr', onLine);
  container.modem.demuxStream(input, stdout, stderr);

  let stopped = false;
  const ended = new Promise<void>((resolve) => {
    let ending = false;
    const done = () => {
      if (ending) return;
      ending = true;
      stdout.end();
      stderr.end();
      // Resolve after the sinks have passed on their last partial lines.
      void Promise.allSettled([finished(stdout), finished(stderr)]).then(() => resolve());
    };
    input.on('end', done);
    input.on('close', done);
    input.on('error', done);
  });
  return {
    stop: () => {
      if (stopped) return;
      stopped = true;
      abort.abort();
      (input as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.();
    },
    ended,
  };
}

function lineSink(source: LogSource, onLine: (line: string, source: LogSource) => void): Writable {
  const decoder = new StringDecoder('utf8');
  let partial = '';
  const emitLines = (text: string) => {
    partial += text;
    let newline = partial.indexOf('\n');
    while (newline >= 0) {
      onLine(partial.slice(0, newline).replace(/\r$/, ''), source);
      partial = partial.slice(newline + 1);
      newline = partial.indexOf('\n');
    }
  };
  return new Writable({
    decodeStrings: true,
    write(chunk: Buffer, _encoding, callback) {
      emitLines(decoder.write(chunk));
      callback();
    },
    final(callback) {
      emitLines(decoder.end());
      // A last line without a newline still counts.
      if (partial !== '') onLine(partial.replace(/\r$/, ''), source);
      partial = '';
      callback();
    },
  });
}
