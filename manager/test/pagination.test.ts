import { randomUUID } from 'node:crypto';
import {
  ErrorBody,
  PROVIDER_PAGE_DEFAULT,
  PROVIDER_PAGE_MAX,
  ProviderList,
  RegisterRequest,
} from '@ray-agent/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, registerBody, startTestServer, type TestServer } from './helpers.js';

let s: TestServer;
let tokenId: number;
const t0 = Date.parse('2026-03-01T00:00:00.000Z');

/** Registers `n` providers through the store, one millisecond apart from `start` (their registeredAt). */
function seed(n: number, start: number): string[] {
  const ids: string[] = [];
  s.store.db.transaction(() => {
    for (let i = 0; i < n; i++) {
      const req = RegisterRequest.parse(registerBody({ installId: randomUUID(), hostname: `host-${start + i}` }));
      ids.push(s.store.register(req, tokenId, new Date(start + i)).providerId);
    }
  })();
  return ids;
}

async function page(query: string): Promise<ProviderList> {
  const res = await s.call('GET', `/api/providers${query}`, { token: ADMIN_TOKEN });
  expect(res.status, res.text).toBe(200);
  return ProviderList.parse(res.body);
}

/** Every page from the first, with `between` run after each page (registrations arriving meanwhile). */
async function walk(limit: number, between: () => void = () => {}): Promise<string[][]> {
  const pages: string[][] = [];
  let after: string | null = null;
  do {
    const list: ProviderList = await page(`?limit=${limit}${after === null ? '' : `&after=${after}`}`);
    pages.push(list.providers.map((p) => p.providerId));
    after = list.nextAfter ?? null;
    between();
  } while (after !== null);
  return pages;
}

beforeAll(async () => {
  s = await startTestServer();
  tokenId = s.store.createEnrollmentToken({ label: 'pages' }).id;
});
afterAll(() => s.close());

describe('GET /api/providers, paginated', () => {
  it('walks every provider once, in registration order, limit at a time', async () => {
    const ids = seed(7, t0);
    const pages = await walk(3);
    expect(pages.map((p) => p.length)).toEqual([3, 3, 1]);
    expect(pages.flat()).toEqual(ids);
    // A page that ends exactly at the last provider says so: no empty page to fetch.
    expect((await page(`?limit=1&after=${ids[5]}`)).nextAfter).toBeNull();
    expect(s.openApiProblems).toEqual([]);
  });

  it('stays correct while providers register during the walk: none skipped or repeated, new ones at the end', async () => {
    const before = (await walk(PROVIDER_PAGE_MAX)).flat();
    let late = 0;
    const added: string[] = [];
    const pages = await walk(2, () => {
      if (late < 3) added.push(...seed(1, t0 + 1_000_000 + late++));
    });
    const seen = pages.flat();
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen.slice(0, before.length)).toEqual(before);
    expect(seen.slice(before.length)).toEqual(added);
  });

  it('pages with the default size when no limit is given, and uses the index for every page', async () => {
    seed(PROVIDER_PAGE_DEFAULT, t0 + 2_000_000);
    const first = await page('');
    expect(first.providers).toHaveLength(PROVIDER_PAGE_DEFAULT);
    expect(first.nextAfter).toBe(first.providers[PROVIDER_PAGE_DEFAULT - 1]?.providerId);
    const plan = s.store.db
      .prepare(
        'EXPLAIN QUERY PLAN SELECT * FROM providers WHERE (registered_at, id) > (?, ?) ORDER BY registered_at, id LIMIT 5',
      )
      .all('x', 'y') as Array<{ detail: string }>;
    expect(plan.map((row) => row.detail).join(' ')).toMatch(/providers_registered/);
    expect(plan.map((row) => row.detail).join(' ')).not.toMatch(/TEMP B-TREE/);
  });

  it.each([
    ['?limit=0', /limit: limit must be at least 1, e\.g\. limit=500/],
    [`?limit=${PROVIDER_PAGE_MAX + 1}`, /limit: limit must be at most 1000/],
    ['?limit=2.5', /limit: limit must be a whole number/],
    ['?limit=many', /limit: /],
    ['?after=NOT_AN_ID', /after: provider IDs are/],
    ['?after=prv-aaaaaaaaaaaa', /after: no provider prv-aaaaaaaaaaaa; pass the nextAfter of the previous page/],
  ])('refuses %s with 400 invalid_request naming the field', async (query, message) => {
    const res = await s.call('GET', `/api/providers${query}`, { token: ADMIN_TOKEN });
    expect(res.status, res.text).toBe(400);
    const body = ErrorBody.parse(res.body);
    expect(body.error.code).toBe('invalid_request');
    expect(body.error.message).toMatch(message);
  });
});
