import { readFileSync } from 'node:fs';
import { PassThrough, Readable } from 'node:stream';
import type { PullProgress } from '@ray-agent/protocol';
import { describe, expect, test } from 'vitest';
import { followPull, PullAggregator, type PullEvent, PullFailedError } from '../src/engine/pull-progress.js';

/**
 * Event sequences recorded from the real engine pulling from a local registry (see the image-pull test for how):
 * a fresh two-layer pull, the same with one layer already present, and a pull whose blob the registry lost.
 */
function fixture(name: string): PullEvent[] {
  return readFileSync(new URL(`./fixtures/${name}.jsonl`, import.meta.url), 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as PullEvent);
}

const LAYER_A = 25173684;
const LAYER_B = 12586905;

describe('PullAggregator on recorded pulls', () => {
  test('a fresh pull sums both layers, only ever grows, and ends at the total', () => {
    const aggregator = new PullAggregator('img');
    const seen: PullProgress[] = [aggregator.snapshot()];
    for (const event of fixture('pull-fresh')) {
      aggregator.add(event);
      seen.push(aggregator.snapshot());
    }
    expect(seen[0]).toEqual({
      image: 'img',
      currentBytes: 0,
      totalBytes: 0,
      fraction: null,
      done: false,
      error: null,
    });
    // After the first Downloading event only layer B's size is known.
    expect(seen[4]).toMatchObject({ currentBytes: 131072, totalBytes: LAYER_B });
    for (let index = 1; index < seen.length; index++)
      expect(seen[index]?.currentBytes).toBeGreaterThanOrEqual(seen[index - 1]?.currentBytes ?? 0);
    expect(aggregator.snapshot()).toMatchObject({ currentBytes: LAYER_A + LAYER_B, totalBytes: LAYER_A + LAYER_B });
    expect(aggregator.snapshot().fraction).toBe(1);
    expect(aggregator.error).toBeNull();
    expect(aggregator.snapshot('done')).toMatchObject({ done: true, fraction: 1, error: null });
  });

  test('"Already exists" completes a layer of unknown size; Extracting supplies the size of a fast download', () => {
    const aggregator = new PullAggregator('img');
    for (const event of fixture('pull-already-exists')) aggregator.add(event);
    // Layer A was already here (size unknown, counts 0); layer B sent no Downloading event, only Extracting.
    expect(aggregator.snapshot()).toMatchObject({ currentBytes: LAYER_B, totalBytes: LAYER_B, fraction: 1 });
  });

  test('an error event fails the pull although the stream carries on normally', () => {
    const aggregator = new PullAggregator('img');
    for (const event of fixture('pull-broken-blob')) aggregator.add(event);
    expect(aggregator.error).toBe('unknown blob');
  });

  test('errorDetail alone also counts as an error; the first error is kept', () => {
    const aggregator = new PullAggregator('img');
    aggregator.add({ errorDetail: { message: 'toomanyrequests: rate limit' } });
    aggregator.add({ error: 'second' });
    expect(aggregator.error).toBe('toomanyrequests: rate limit');
  });

  test('a layer whose download restarts keeps its best figure', () => {
    const aggregator = new PullAggregator('img');
    aggregator.add({ status: 'Downloading', id: 'l1', progressDetail: { current: 500, total: 1000 } });
    aggregator.add({ status: 'Retrying in 5 seconds', id: 'l1' });
    aggregator.add({ status: 'Downloading', id: 'l1', progressDetail: { current: 100, total: 1000 } });
    expect(aggregator.snapshot()).toMatchObject({ currentBytes: 500, totalBytes: 1000, fraction: 0.5 });
  });

  test('"Pulling from" (whose id is the tag) and status lines without id add no layer', () => {
    const aggregator = new PullAggregator('img');
    aggregator.add({ status: 'Pulling from library/debian', id: 'bookworm-slim' });
    aggregator.add({ status: 'Digest: sha256:abc' });
    aggregator.add({ status: 'Status: Image is up to date for debian:bookworm-slim' });
    expect(aggregator.snapshot()).toMatchObject({ currentBytes: 0, totalBytes: 0, fraction: null });
    expect(aggregator.snapshot('done')).toMatchObject({ fraction: 1, done: true });
  });
});

function lines(events: PullEvent[]): string {
  return events.map((event) => `${JSON.stringify(event)}\n`).join('');
}

describe('followPull over a stream', () => {
  test('resolves with the final progress and sends the first and the final one', async () => {
    const sent: PullProgress[] = [];
    const text = lines(fixture('pull-fresh'));
    // Chunks cut mid-line, as a socket delivers them.
    const chunks = [text.slice(0, 37), text.slice(37, 900), text.slice(900)];
    const final = await followPull(Readable.from(chunks), 'img', (progress) => sent.push(progress));
    expect(final).toMatchObject({ done: true, currentBytes: LAYER_A + LAYER_B, totalBytes: LAYER_A + LAYER_B });
    expect(sent[0]).toMatchObject({ currentBytes: 0, done: false });
    expect(sent.at(-1)).toEqual(final);
  });

  test('rejects with PullFailedError on an error event even though the stream ended normally', async () => {
    const sent: PullProgress[] = [];
    const failure = followPull(Readable.from([lines(fixture('pull-broken-blob'))]), 'img', (p) => sent.push(p));
    await expect(failure).rejects.toBeInstanceOf(PullFailedError);
    const error = (await failure.catch((caught: unknown) => caught)) as PullFailedError;
    expect(error.message).toBe('unknown blob');
    expect(error.progress).toMatchObject({ error: 'unknown blob', done: false });
    // The caller decides what the person sees (a local copy may still do): no "done" was sent.
    expect(sent.every((progress) => !progress.done)).toBe(true);
  });

  test('rejects when the connection closes before the end of the stream', async () => {
    const stream = new PassThrough();
    const failure = followPull(stream, 'img', () => {});
    stream.write(lines(fixture('pull-fresh').slice(0, 4)));
    stream.destroy();
    await expect(failure).rejects.toThrow('closed during the pull');
  });

  test('a line that is not JSON is skipped', async () => {
    const text = `garbage\n${lines(fixture('pull-fresh'))}`;
    await expect(followPull(Readable.from([text]), 'img', () => {})).resolves.toMatchObject({ done: true });
  });

  test('throttles: 30 events over about 600 ms give at most one callback per 100 ms plus the final one', async () => {
    const stream = new PassThrough();
    const sent: Array<{ at: number; progress: PullProgress }> = [];
    const started = Date.now();
    const pull = followPull(stream, 'img', (progress) => sent.push({ at: Date.now(), progress }), {
      throttleMs: 100,
    });
    for (let index = 1; index <= 30; index++) {
      stream.write(
        `${JSON.stringify({ status: 'Downloading', id: 'l1', progressDetail: { current: index * 100, total: 3000 } })}\n`,
      );
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    stream.end();
    await pull;
    const elapsed = Date.now() - started;
    expect(sent.length).toBeLessThanOrEqual(Math.ceil(elapsed / 100) + 2);
    expect(sent.length).toBeGreaterThanOrEqual(3);
    const gaps = sent.slice(1, -1).map((entry, index) => entry.at - (sent[index]?.at ?? 0));
    for (const gap of gaps) expect(gap).toBeGreaterThanOrEqual(95);
    expect(sent.at(-1)?.progress).toMatchObject({ done: true, currentBytes: 3000 });
  });
});
