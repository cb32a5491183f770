import { execFile } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { type PullProgress, type StatusView, ViewPhase } from '@ray-agent/protocol';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { openRenderer, type RendererSession } from './support/renderer-bridge.js';
import { GiB, ScriptedService, statusView } from './support/renderer-scripted-service.js';

/**
 * The tray app's window (renderer/dist, built here) in headless Chromium, with window.rayAgent bridged to a scripted
 * in-memory service through the same IPC checks Electron's main process uses. Electron itself cannot run here.
 */
const root = fileURLToPath(new URL('..', import.meta.url));
let session: RendererSession | null = null;
let clock = 0;
/**
 * Views must move forward in time: the page ignores a view older than the one it shows, and a service made after a
 * slow build starts with a view of its own time. So each one is later than both the last one and now.
 */
const nextUpdatedAt = () => {
  clock = Math.max(clock, Date.now()) + 1000;
  return new Date(clock).toISOString();
};

// expect.poll waits 1 s by default: a headless Chromium on a loaded 2-core machine can take longer to render. A poll
// ends as soon as the page shows what it must; this only bounds the wait.
vi.setConfig({ expect: { poll: { timeout: 30_000 } } });

beforeAll(async () => {
  await promisify(execFile)(process.execPath, ['renderer/build.mjs'], { cwd: root });
}, 120_000);

afterEach(async () => {
  // A healthy page throws nothing, whatever the test did.
  const errors = session?.pageErrors ?? [];
  await session?.close();
  session = null;
  expect(errors).toEqual([]);
});

async function open(service: ScriptedService, options: Parameters<typeof openRenderer>[1] = {}) {
  session = await openRenderer(service, options);
  return session;
}

const text = (s: RendererSession, id: string) => s.page.getByTestId(id).textContent();

describe('the window with a scripted service', () => {
  it('the status page shows every phase: headline, detail and attention styling', async () => {
    const s = await open(new ScriptedService());
    const attention = new Set([
      'docker-missing',
      'docker-stopped',
      'docker-denied',
      'unreachable',
      'crash-looping',
      'outdated',
      'error',
    ]);
    for (const phase of ViewPhase.options) {
      const detail = attention.has(phase) ? `What to do about ${phase}.` : null;
      await s.emit(
        'status:changed',
        statusView({ phase, headline: `Headline ${phase}`, detail, updatedAt: nextUpdatedAt() }),
      );
      await expect.poll(() => text(s, 'status-headline')).toBe(`Headline ${phase}`);
      const card = s.page.getByTestId('phase-card');
      expect(await card.getAttribute('data-phase')).toBe(phase);
      expect(await card.evaluate((el) => el.classList.contains('attention'))).toBe(attention.has(phase));
      const detailEl = s.page.getByTestId('status-detail');
      expect(await detailEl.isVisible()).toBe(detail !== null);
      if (detail) expect(await detailEl.textContent()).toBe(detail);
    }
  });

  it('the status page shows registration, provider ID, heartbeat, task count, limits and version', async () => {
    const service = new ScriptedService();
    const failingSince = '2025-06-01T08:30:00.000Z';
    service.status = statusView({
      phase: 'contributing',
      headline: 'Contributing to ray-head.lan',
      contributing: true,
      registration: { state: 'registered', providerId: 'prv-4f2a9c' },
      heartbeat: { healthy: false, lastSuccessAt: null, failingSince, consecutiveFailures: 3 },
      runningTasks: 7,
      limits: { cpus: 1.5, memoryBytes: 4 * GiB },
      agentVersion: '0.1.0',
      sandbox: { state: 'ready', line: 'ready: 1 slot, 0 running; sandboxed work only' },
      updatedAt: nextUpdatedAt(),
    });
    const s = await open(service);
    const at = new Date(failingSince);
    const hhmm = `${String(at.getHours()).padStart(2, '0')}:${String(at.getMinutes()).padStart(2, '0')}`;
    expect(await text(s, 'registration')).toBe('Registered');
    expect(await text(s, 'provider-id')).toBe('prv-4f2a9c');
    expect(await text(s, 'heartbeat')).toBe(`Failing since ${hhmm} (3 failures in a row)`);
    expect(await text(s, 'task-count')).toBe('7');
    expect(await text(s, 'limits')).toBe('1.5 CPUs, 4.0 GiB memory');
    expect(await text(s, 'agent-version')).toBe('0.1.0');
    expect(await text(s, 'sandbox')).toBe('ready: 1 slot, 0 running; sandboxed work only');

    await s.emit('status:changed', {
      ...service.status,
      heartbeat: { healthy: true, lastSuccessAt: failingSince, failingSince: null, consecutiveFailures: 0 },
      runningTasks: 1,
      updatedAt: nextUpdatedAt(),
    });
    await expect.poll(() => text(s, 'task-count')).toBe('1');
    expect(await text(s, 'task-label')).toBe('task running');
    expect(await text(s, 'heartbeat')).toBe(`Healthy (last at ${hhmm})`);
    // An older view arriving late does not overwrite a newer one.
    await s.emit('status:changed', { ...service.status, runningTasks: 99, updatedAt: '2000-01-01T00:00:00.000Z' });
    expect(await text(s, 'task-count')).toBe('1');
  });

  it('the contribute switch calls contribute:set; a refusal puts it back and says why; it is locked while stopping', async () => {
    const service = new ScriptedService();
    service.settings = { ...service.settings, clusterAddress: 'ray://ray-head.lan:10001' };
    const s = await open(service);
    const toggle = s.page.getByTestId('contribute-toggle');
    expect(await toggle.isChecked()).toBe(false);
    await s.page.locator('label.switch').click();
    await expect.poll(() => service.callsTo('contribute:set')).toEqual([[true]]);
    await expect.poll(() => toggle.isChecked()).toBe(true);
    expect(service.settings.contribute).toBe(true);

    service.contributeAnswer = { ok: false, error: 'Docker is not running: start Docker and try again.' };
    await s.page.locator('label.switch').click();
    await expect.poll(() => text(s, 'contribute-error')).toBe('Docker is not running: start Docker and try again.');
    expect(service.callsTo('contribute:set')).toEqual([[true], [false]]);
    await expect.poll(() => toggle.isChecked()).toBe(true);

    await s.emit('status:changed', statusView({ phase: 'stopping', headline: 'Stopping', updatedAt: nextUpdatedAt() }));
    await expect.poll(() => toggle.isDisabled()).toBe(true);
    await s.emit(
      'status:changed',
      statusView({ phase: 'off', headline: 'Not contributing', updatedAt: nextUpdatedAt() }),
    );
    await expect.poll(() => toggle.isDisabled()).toBe(false);
  });

  it('the switch follows a change made from the tray (a status event re-reads the settings)', async () => {
    const service = new ScriptedService();
    const s = await open(service);
    service.settings = { ...service.settings, contribute: true };
    await s.emit(
      'status:changed',
      statusView({ phase: 'pulling', headline: 'Downloading', updatedAt: nextUpdatedAt() }),
    );
    await expect.poll(() => s.page.getByTestId('contribute-toggle').isChecked()).toBe(true);
  });

  it('settings: bad values show inline messages from settings:save, the form keeps them, nothing is saved', async () => {
    const service = new ScriptedService();
    const s = await open(service);
    await s.page.getByTestId('tab-settings').click();
    await s.page.getByLabel('Cluster address').fill('head.lan');
    await s.page.getByLabel('Manager URL').fill('http://manager.lan:8443');
    await s.page.getByLabel('Agent image').fill('Not An Image!');
    await s.page.getByTestId('save-button').click();

    await expect
      .poll(() => text(s, 'error-clusterAddress'))
      .toBe('Must be ray://HOST:10001 or HOST:6379, e.g. ray://ray-head.lan:10001');
    expect(await text(s, 'error-managerUrl')).toBe(
      'Must be an https:// URL without a user name, e.g. https://manager.lan:8443',
    );
    expect(await text(s, 'error-image')).toBe('Must be an image reference, e.g. ray-agent:dev');
    expect(await s.page.getByTestId('error-cpus').isVisible()).toBe(false);
    expect(await s.page.getByTestId('input-clusterAddress').getAttribute('aria-invalid')).toBe('true');
    expect(await text(s, 'save-result')).toBe('Nothing was saved: correct the marked fields.');
    // What the person typed is still there to correct.
    expect(await s.page.getByTestId('input-clusterAddress').inputValue()).toBe('head.lan');
    expect(await s.page.getByTestId('input-managerUrl').inputValue()).toBe('http://manager.lan:8443');
    expect(service.settings.clusterAddress).toBe('');

    await s.page.getByLabel('Cluster address').fill('ray://ray-head.lan:10001');
    await s.page.getByLabel('Manager URL').fill('https://manager.lan:8443');
    await s.page.getByLabel('Agent image').fill('ray-agent:dev');
    await s.page.getByLabel('Start Ray Agent when I log in').check();
    await s.page.getByLabel('When I quit Ray Agent').selectOption('leave-running');
    await s.page.getByLabel('Work this computer accepts').selectOption('sandboxed');
    await s.page.getByLabel('Let sandboxes use the network when the cluster asks (off: they get none)').check();
    await s.page.getByTestId('save-button').click();
    await expect.poll(() => text(s, 'save-result')).toBe('Saved.');
    expect(await s.page.getByTestId('error-clusterAddress').isVisible()).toBe(false);
    expect(service.settings).toMatchObject({
      clusterAddress: 'ray://ray-head.lan:10001',
      managerUrl: 'https://manager.lan:8443',
      startAtLogin: true,
      onQuit: 'leave-running',
      acceptWork: 'sandboxed',
      sandboxNetwork: true,
    });
    // A cluster is configured now: the playground offer goes away.
    expect(await s.page.getByTestId('playground').isVisible()).toBe(false);
  });

  it('settings: a status port below 1024 gets its message', async () => {
    const s = await open(new ScriptedService());
    await s.page.getByTestId('tab-settings').click();
    await s.page.getByText('Advanced').click();
    await s.page.getByLabel('Agent status port (on 127.0.0.1)').fill('80');
    await s.page.getByTestId('save-button').click();
    await expect.poll(() => text(s, 'error-statusPort')).toBe('Must be 1024-65535, e.g. 8765');
  });

  it('token: stored state, a refused token gets its message and is not echoed, a good one is stored', async () => {
    const service = new ScriptedService();
    const s = await open(service);
    await s.page.getByTestId('tab-settings').click();
    expect(await text(s, 'token-state')).toBe('Not stored');
    const token = s.page.getByLabel('Enrollment token');
    expect(await token.getAttribute('type')).toBe('password');

    await token.fill('rat_secret part two');
    await s.page.getByTestId('save-button').click();
    await expect
      .poll(() => text(s, 'error-token'))
      .toBe('The enrollment token contains spaces, line breaks or control characters: paste only the token.');
    expect(await text(s, 'save-result')).toBe('Settings saved; the enrollment token was not stored.');
    expect(await token.inputValue()).toBe('rat_secret part two');

    await token.fill('short');
    await s.page.getByTestId('save-button').click();
    await expect
      .poll(() => text(s, 'error-token'))
      .toBe('The enrollment token is too short: paste the whole token the manager printed.');

    await token.fill('  rat_0123456789abcdef0123  ');
    await s.page.getByTestId('save-button').click();
    await expect.poll(() => text(s, 'save-result')).toBe('Saved.');
    expect(service.token).toBe('rat_0123456789abcdef0123');
    expect(await token.inputValue()).toBe('');
    expect(await text(s, 'token-state')).toBe('Stored in the OS keychain');
    expect(await s.page.getByTestId('error-token').isVisible()).toBe(false);
  });

  it('token: without secure storage the field is disabled and the reason is shown', async () => {
    const service = new ScriptedService();
    service.tokenUnavailableReason =
      'No secure storage (OS keychain) is available on this system, so the token cannot be stored safely.';
    const s = await open(service);
    await s.page.getByTestId('tab-settings').click();
    await expect.poll(() => text(s, 'token-state')).toBe(service.tokenUnavailableReason);
    expect(await s.page.getByLabel('Enrollment token').isDisabled()).toBe(true);
  });

  it("sliders are bounded by limits:get (Docker's figures), with the host's beside them", async () => {
    const service = new ScriptedService();
    service.limits = {
      docker: { cpus: 4, memoryBytes: 7.6 * GiB },
      host: { cpus: 8, memoryBytes: 31.2 * GiB, model: 'Test CPU' },
    };
    service.settings = { ...service.settings, cpus: 2, memoryMiB: 4096 };
    const s = await open(service);
    await s.page.getByTestId('tab-settings').click();
    await expect
      .poll(() => text(s, 'offerable'))
      .toBe('Docker can use 4 CPUs / 7.6 GiB; this computer has 8 CPUs / 31.2 GiB');
    const cpus = s.page.getByTestId('input-cpus');
    const memory = s.page.getByTestId('input-memoryMiB');
    expect(await cpus.getAttribute('max')).toBe('4');
    expect(await memory.getAttribute('max')).toBe(String(Math.floor((7.6 * 1024) / 256) * 256));
    expect(await cpus.inputValue()).toBe('2');
    expect(await text(s, 'cpus-value')).toBe('2 CPUs');

    // Pushing the sliders as far as they go stops at Docker's figures.
    await cpus.focus();
    await s.page.keyboard.press('End');
    await memory.focus();
    await s.page.keyboard.press('End');
    expect(await text(s, 'cpus-value')).toBe('4 CPUs');
    await s.page.getByTestId('save-button').click();
    await expect.poll(() => text(s, 'save-result')).toBe('Saved.');
    expect(service.settings.cpus).toBe(4);
    expect(service.settings.memoryMiB).toBe(7680);
  });

  it('the default limits read as the brief says when Docker and the host agree', async () => {
    const s = await open(new ScriptedService());
    await s.page.getByTestId('tab-settings').click();
    await expect
      .poll(() => text(s, 'offerable'))
      .toBe('Docker can use 2 CPUs / 23.4 GiB; this computer has 2 CPUs / 23.4 GiB');
  });

  it('a saved value above what Docker can give now is kept unless the slider is moved, and says so', async () => {
    const service = new ScriptedService();
    service.settings = { ...service.settings, cpus: 8 };
    const s = await open(service);
    await s.page.getByTestId('tab-settings').click();
    await expect.poll(() => text(s, 'limits-note')).toContain('Your saved 8 CPUs is more than can be offered now');
    await s.page.getByTestId('save-button').click();
    await expect.poll(() => text(s, 'save-result')).toBe('Saved.');
    expect(service.callsTo('settings:save').at(-1)?.[0]).toMatchObject({ cpus: 8 });
  });

  it('the pull progress bar follows pull:progress and shows a failure', async () => {
    const s = await open(new ScriptedService());
    const progress = (p: Partial<PullProgress>): PullProgress => ({
      image: 'ray-agent:dev',
      currentBytes: 0,
      totalBytes: 0,
      fraction: null,
      done: false,
      error: null,
      ...p,
    });
    expect(await s.page.getByTestId('pull').isVisible()).toBe(false);
    await s.emit('pull:progress', progress({}));
    await expect.poll(() => text(s, 'pull-text')).toBe('Waiting for the image size…');
    expect(await s.page.getByTestId('pull-bar').getAttribute('value')).toBeNull();

    await s.emit('pull:progress', progress({ currentBytes: 256 * 1024 ** 2, totalBytes: 1024 ** 3, fraction: 0.25 }));
    await expect.poll(() => text(s, 'pull-text')).toBe('25% · 256.0 MiB of 1.0 GiB');
    expect(await s.page.getByTestId('pull-bar').evaluate((el) => (el as unknown as { value: number }).value)).toBe(
      0.25,
    );

    await s.emit(
      'pull:progress',
      progress({ currentBytes: 1024 ** 3, totalBytes: 1024 ** 3, fraction: 1, done: true }),
    );
    await expect.poll(() => text(s, 'pull-text')).toBe('Downloaded ray-agent:dev');

    await s.emit(
      'pull:progress',
      progress({ fraction: 0.4, done: true, error: 'The registry refused the pull: manifest unknown.' }),
    );
    await expect.poll(() => text(s, 'pull-error')).toBe('The registry refused the pull: manifest unknown.');
    expect(await text(s, 'pull-text')).toBe('Download failed');
  });

  it('the log view starts from logs:tail, appends logs:data, and keeps only the last 2000 lines', async () => {
    const service = new ScriptedService();
    service.logs = 'first line\nsecond line\n';
    const s = await open(service);
    expect(service.callsTo('logs:tail')).toEqual([[2000]]);
    await s.page.getByTestId('tab-logs').click();
    await expect.poll(() => text(s, 'log-output')).toBe('first line\nsecond line');
    await s.emit('logs:data', 'third ');
    await s.emit('logs:data', 'line\n');
    await expect.poll(() => text(s, 'log-output')).toBe('first line\nsecond line\nthird line');

    const many = Array.from({ length: 2500 }, (_, i) => `line ${i}`).join('\n');
    await s.emit('logs:data', `${many}\n`);
    await expect.poll(() => text(s, 'log-count')).toBe('2000 lines (the last 2000 are kept)');
    const shown = (await text(s, 'log-output')) ?? '';
    expect(shown.split('\n')).toHaveLength(2000);
    expect(shown.startsWith('line 500\n')).toBe(true);
    expect(shown.endsWith('line 2499')).toBe(true);
  });

  it('notices appear in a banner that can be dismissed', async () => {
    const s = await open(new ScriptedService());
    const notice =
      'Your settings file was unreadable and was reset to defaults; the old file is kept at /tmp/config.json.corrupt-1';
    await s.emit('notice', notice);
    await expect.poll(() => text(s, 'notice-text')).toBe(notice);
    await s.page.getByRole('button', { name: 'Dismiss this notice' }).click();
    expect(await s.page.getByTestId('notice').isVisible()).toBe(false);
  });

  it('with no cluster set, "Start local playground" calls playground:start and shows the answer', async () => {
    const service = new ScriptedService();
    service.playgroundAnswer = { ok: false, error: 'Docker is not installed: install Docker Engine first.' };
    const s = await open(service);
    await s.page.getByRole('button', { name: 'Start local playground' }).click();
    await expect.poll(() => text(s, 'playground-result')).toBe('Docker is not installed: install Docker Engine first.');
    service.playgroundAnswer = { ok: true };
    await s.page.getByRole('button', { name: 'Start local playground' }).click();
    await expect.poll(() => text(s, 'playground-result')).toContain('The local playground is starting');
    expect(service.callsTo('playground:start')).toHaveLength(2);
  });

  it('tabs work from the keyboard and every control has an accessible name', async () => {
    const s = await open(new ScriptedService());
    await s.page.getByTestId('tab-status').focus();
    await s.page.keyboard.press('ArrowRight');
    expect(await s.page.getByTestId('page-settings').isVisible()).toBe(true);
    expect(await s.page.getByRole('tab', { name: 'Settings' }).getAttribute('aria-selected')).toBe('true');
    for (const label of [
      'Cluster address',
      'Manager URL',
      'Enrollment token',
      'Agent image',
      'When I quit Ray Agent',
    ]) {
      expect(await s.page.getByLabel(label).count()).toBe(1);
    }
    expect(await s.page.getByRole('slider', { name: /CPUs/ }).count()).toBe(1);
    expect(await s.page.getByRole('slider', { name: /Memory/ }).count()).toBe(1);
    await s.page.keyboard.press('ArrowLeft');
    expect(await s.page.getByRole('switch', { name: 'Contribute compute' }).count()).toBe(1);
  });

  it('is readable in dark mode: the theme follows prefers-color-scheme', async () => {
    const light = await open(new ScriptedService());
    const lightColours = await light.page.evaluate(
      '[getComputedStyle(document.body).backgroundColor, getComputedStyle(document.body).color]',
    );
    await light.close();
    session = null;
    const dark = await open(new ScriptedService(), { colorScheme: 'dark' });
    const darkColours = await dark.page.evaluate(
      '[getComputedStyle(document.body).backgroundColor, getComputedStyle(document.body).color]',
    );
    expect(lightColours).toEqual(['rgb(246, 247, 249)', 'rgb(27, 31, 36)']);
    expect(darkColours).toEqual(['rgb(21, 24, 28)', 'rgb(232, 234, 237)']);
  });

  it('the CSP blocks injected inline script and style, and fetch to another origin', async () => {
    // A second loopback server that must never be reached from the page.
    let hits = 0;
    const other = createServer((_request, response) => {
      hits++;
      response.writeHead(200, { 'access-control-allow-origin': '*' }).end('reached');
    });
    await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
    const otherUrl = `http://127.0.0.1:${(other.address() as AddressInfo).port}/`;
    try {
      const s = await open(new ScriptedService());
      const result = await s.page.evaluate(`(async () => {
        const violations = [];
        document.addEventListener('securitypolicyviolation', (event) => violations.push(event.violatedDirective));
        const script = document.createElement('script');
        script.textContent = 'window.__injected = true;';
        document.body.appendChild(script);
        const styled = document.createElement('p');
        styled.setAttribute('style', 'color: rgb(255, 0, 0)');
        document.body.appendChild(styled);
        const fetchOther = await fetch(${JSON.stringify(otherUrl)}).then(() => 'reached', (error) => 'blocked: ' + error.name);
        const fetchSelf = await fetch('/index.html').then(() => 'reached', (error) => 'blocked: ' + error.name);
        // The violation events come as tasks of their own: wait for the three (bounded) rather than a fixed 50 ms.
        const expected = ['script-src-elem', 'style-src-attr', 'connect-src'];
        for (let i = 0; i < 600 && !expected.every((d) => violations.includes(d)); i++)
          await new Promise((resolve) => setTimeout(resolve, 50));
        return {
          injected: window.__injected === true,
          colour: getComputedStyle(styled).color,
          fetchOther,
          fetchSelf,
          violations,
        };
      })()`);
      expect(result).toMatchObject({
        injected: false,
        fetchOther: 'blocked: TypeError',
        fetchSelf: 'blocked: TypeError',
      });
      const { colour, violations } = result as { colour: string; violations: string[] };
      expect(colour).not.toBe('rgb(255, 0, 0)');
      expect(violations).toEqual(expect.arrayContaining(['script-src-elem', 'style-src-attr', 'connect-src']));
      expect(hits).toBe(0);
    } finally {
      await new Promise<void>((resolve) => other.close(() => resolve()));
    }
  });

  it('a container changed by hand: the page asks before replacing it, and replaces only on yes', async () => {
    const service = new ScriptedService();
    service.settings = { ...service.settings, clusterAddress: 'ray://ray-head.lan:10001' };
    service.contributeAnswer = {
      ok: false,
      error: 'the container ray-agent was changed outside this app (the Docker socket is mounted)',
      confirmReplace: true,
    };
    const s = await open(service);
    const dialogs: string[] = [];
    let accept = false;
    s.page.on('dialog', (dialog) => {
      dialogs.push(dialog.message());
      void (accept ? dialog.accept() : dialog.dismiss());
    });
    await s.page.locator('label.switch').click();
    await expect.poll(() => dialogs.length).toBe(1);
    expect(dialogs[0]).toContain('changed outside this app');
    await expect.poll(() => text(s, 'contribute-error')).toContain('changed outside this app');
    expect(service.callsTo('container:replace')).toEqual([]);
    accept = true;
    await s.page.locator('label.switch').click();
    await expect.poll(() => service.callsTo('container:replace')).toEqual([[]]);
    expect(dialogs).toHaveLength(2);
  });

  it('calls the bridge cannot make: a bad payload is refused by the IPC checks before the service', async () => {
    const service = new ScriptedService();
    const s = await open(service);
    const answer = await s.page.evaluate(
      `window.rayAgent['logs:tail'](999999).then(() => 'ok', (error) => error.message)`,
    );
    expect(answer).toBe('Invalid arguments for logs:tail: 0: Too big: expected number to be <=5000');
    expect(service.callsTo('logs:tail')).toEqual([[2000]]);
  });

  it('with a scripted status, renders the contributing page (screenshot kept in e2e/artifacts; the README shows the real one from tray-app.test.ts)', async () => {
    const service = new ScriptedService();
    service.settings = { ...service.settings, clusterAddress: 'ray://ray-head.lan:10001', contribute: true };
    const view: StatusView = statusView({
      phase: 'contributing',
      headline: 'Contributing to ray-head.lan',
      contributing: true,
      registration: { state: 'registered', providerId: 'prv-4f2a9c71' },
      heartbeat: { healthy: true, lastSuccessAt: new Date().toISOString(), failingSince: null, consecutiveFailures: 0 },
      runningTasks: 3,
      limits: { cpus: 2, memoryBytes: 4 * GiB },
      agentVersion: '0.1.0',
      updatedAt: nextUpdatedAt(),
    });
    service.status = view;
    const s = await open(service, { viewport: { width: 820, height: 560 } });
    expect(await text(s, 'status-headline')).toBe('Contributing to ray-head.lan');
    mkdirSync(`${root}/e2e/artifacts`, { recursive: true });
    await s.page.screenshot({ path: `${root}/e2e/artifacts/screenshot-status-scripted.png`, fullPage: true });
  });
});

describe('the contribution policy, what runs now, and leaving (scripted service)', () => {
  it('the policy section edits and saves through settings:save; a bad value is shown inline under its field', async () => {
    const service = new ScriptedService();
    const s = await open(service);
    await s.page.getByTestId('tab-settings').click();
    await expect
      .poll(() => text(s, 'policy-summary'))
      .toBe('Contributes whenever contributing is on, never on battery.');

    await s.page.getByLabel('Only when this computer has had no input for a while').check();
    await s.page.getByLabel('Idle for').fill('15');
    await s.page.getByLabel('Not on battery power').uncheck();
    await s.page.getByLabel('Not below').fill('40');
    await s.page.getByLabel('Step aside to').fill('20');
    await s.page.getByLabel('Drain and stop after').fill('3');
    await s.page.getByLabel('On sleep or shutdown, give running tasks').fill('60');
    await s.page.getByLabel(/Notify me when something needs me/).uncheck();
    await s.page.getByLabel('Agent updates').selectOption('off');
    expect(await text(s, 'policy-summary')).toBe('Contributes only after 15 minutes without input.');
    await s.page.getByTestId('save-button').click();
    await expect.poll(() => text(s, 'save-result')).toBe('Saved.');
    expect(service.settings.policy).toMatchObject({
      idle: { enabled: true, minutes: 15 },
      schedule: { enabled: false },
      battery: { pauseOnBattery: false, minPercent: 40 },
      throttlePercent: 20,
      graceMinutes: 3,
      goingAwayDrainSeconds: 60,
    });
    expect(service.settings.notifications).toBe(false);
    expect(service.settings.updates).toBe('off');

    // Out of range: refused by the protocol's schema, the message under the field, nothing saved.
    const saves = service.callsTo('settings:save').length;
    await s.page.getByLabel('Idle for').fill('0');
    await s.page.getByTestId('save-button').click();
    await expect.poll(() => text(s, 'error-policy-idle')).toBe('Idle minutes must be 1-240 minutes, e.g. 5');
    expect(await s.page.getByLabel('Idle for').getAttribute('aria-invalid')).toBe('true');
    expect(await text(s, 'save-result')).toBe('Nothing was saved: correct the marked fields.');
    // The IPC checks answered with the field message: the service never saw the bad value.
    expect(service.callsTo('settings:save')).toHaveLength(saves);
    expect(service.settings.policy.idle.minutes).toBe(15);

    // Corrected, then another field left empty: that one is marked, the first is cleared.
    await s.page.getByLabel('Idle for').fill('10');
    await s.page.getByLabel('Step aside to').fill('');
    await s.page.getByTestId('save-button').click();
    await expect.poll(() => text(s, 'error-policy-throttle')).toBe('Throttle must be a number of percent, e.g. 10');
    expect(await s.page.getByTestId('error-policy-idle').isVisible()).toBe(false);
    await s.page.getByLabel('Step aside to').fill('10');
    await s.page.getByTestId('save-button').click();
    await expect.poll(() => text(s, 'save-result')).toBe('Saved.');
    expect(service.settings.policy.throttlePercent).toBe(10);
    expect(service.settings.policy.idle.minutes).toBe(10);
  });

  it('the schedule grid toggles hours by mouse and by keyboard, and saves them', async () => {
    const service = new ScriptedService();
    const s = await open(service);
    await s.page.getByTestId('tab-settings').click();
    await s.page.getByLabel('Only in the hours marked below').check();
    // The default grid: weekday evenings and nights, all weekend. Monday 09:00 is off, Monday 20:00 on.
    const monday9 = s.page.getByRole('button', { name: 'Monday 09:00–10:00' });
    expect(await monday9.getAttribute('aria-pressed')).toBe('false');
    expect(await s.page.getByRole('button', { name: 'Monday 20:00–21:00' }).getAttribute('aria-pressed')).toBe('true');
    await monday9.click();
    expect(await monday9.getAttribute('aria-pressed')).toBe('true');

    // Keyboard: one tab stop; arrows move, Space and Enter toggle.
    const first = s.page.getByRole('button', { name: 'Monday 00:00–01:00' });
    expect(await first.getAttribute('tabindex')).toBe('0');
    await first.focus();
    await s.page.keyboard.press('ArrowRight');
    await s.page.keyboard.press('ArrowDown');
    await s.page.keyboard.press('Space');
    const tuesday1 = s.page.getByRole('button', { name: 'Tuesday 01:00–02:00' });
    expect(await s.page.evaluate('document.activeElement?.getAttribute("aria-label")')).toBe('Tuesday 01:00–02:00');
    expect(await tuesday1.getAttribute('aria-pressed')).toBe('false');
    await s.page.keyboard.press('End');
    await s.page.keyboard.press('Enter');
    expect(await s.page.getByRole('button', { name: 'Tuesday 23:00–00:00' }).getAttribute('aria-pressed')).toBe(
      'false',
    );
    expect(await text(s, 'policy-summary')).toBe('Contributes only in the marked hours, never on battery.');

    mkdirSync(`${root}/e2e/artifacts`, { recursive: true });
    await s.page.getByTestId('policy').screenshot({ path: `${root}/e2e/artifacts/screenshot-settings-policy.png` });

    await s.page.getByTestId('save-button').click();
    await expect.poll(() => text(s, 'save-result')).toBe('Saved.');
    const hours = service.settings.policy.schedule.hours;
    expect(service.settings.policy.schedule.enabled).toBe(true);
    // WeeklyHours is stored Sunday first: Monday is row 1, Tuesday row 2.
    expect(hours[1]?.[9]).toBe(true);
    expect(hours[2]?.[1]).toBe(false);
    expect(hours[2]?.[23]).toBe(false);
    expect(hours[2]?.[22]).toBe(true);
    expect(hours[0]?.every(Boolean)).toBe(true);
  });

  it('the status page shows the policy sentence, what runs now and where the compute goes', async () => {
    const service = new ScriptedService();
    service.settings = { ...service.settings, clusterAddress: 'ray://ray-head.lan:10001', contribute: true };
    service.status = statusView({
      phase: 'contributing',
      headline: 'Contributing: 5 tasks running',
      contributing: true,
      registration: { state: 'registered', providerId: 'prv-4f2a9c71' },
      heartbeat: { healthy: true, lastSuccessAt: new Date().toISOString(), failingSince: null, consecutiveFailures: 0 },
      runningTasks: 5,
      limits: { cpus: 2, memoryBytes: 4 * GiB },
      agentVersion: '0.1.0',
      policy: {
        mode: 'stepping-aside',
        reason: 'in-use',
        sentence: 'Stepping aside: you are using the computer; tasks run slowly, draining in 5 min',
        since: new Date().toISOString(),
      },
      tasks: [
        { name: 'train_step', count: 3 },
        { name: 'Preprocessor.run', count: 2 },
      ],
      cluster: { address: 'ray://ray-head.lan:10001', managerUrl: 'https://manager.lan:8443' },
      updatedAt: nextUpdatedAt(),
    });
    const s = await open(service, { viewport: { width: 820, height: 600 } });
    expect(await text(s, 'policy-sentence')).toBe(
      'Stepping aside: you are using the computer; tasks run slowly, draining in 5 min',
    );
    const items = await s.page.getByTestId('task-names').locator('li').allTextContents();
    expect(items).toEqual(['train_step× 3', 'Preprocessor.run× 2']);
    expect(await s.page.getByTestId('task-names-empty').isVisible()).toBe(false);
    expect(await text(s, 'cluster-line')).toBe('Contributing to ray-head.lan:10001 via manager.lan:8443');
    mkdirSync(`${root}/e2e/artifacts`, { recursive: true });
    await s.page.screenshot({ path: `${root}/e2e/artifacts/screenshot-status-policy.png`, fullPage: true });

    // Nothing running, an update rolled back: the list says so and the update line is marked.
    await s.emit(
      'status:changed',
      statusView({
        phase: 'off',
        headline: 'Paused: on battery; will resume on AC power',
        policy: {
          mode: 'paused',
          reason: 'on-battery',
          sentence: 'Paused: on battery; will resume on AC power',
          since: new Date().toISOString(),
        },
        tasks: [],
        cluster: { address: 'ray://ray-head.lan:10001', managerUrl: 'https://manager.lan:8443' },
        update: { state: 'rolled-back', sentence: 'The new agent image did not start; went back to the previous one.' },
        updatedAt: nextUpdatedAt(),
      }),
    );
    await expect.poll(() => text(s, 'status-headline')).toBe('Paused: on battery; will resume on AC power');
    // The sentence is the headline now: not said twice.
    expect(await s.page.getByTestId('policy-sentence').isVisible()).toBe(false);
    expect(await s.page.getByTestId('task-names-empty').isVisible()).toBe(true);
    expect(await text(s, 'cluster-line')).toBe('Set up for ray-head.lan:10001 via manager.lan:8443');
    expect(await text(s, 'update-line')).toBe('The new agent image did not start; went back to the previous one.');
  });

  it("the window's stop buttons (for desktops without a tray) follow the policy and call contribute:stop", async () => {
    const service = new ScriptedService();
    service.settings = { ...service.settings, clusterAddress: 'ray://ray-head.lan:10001', contribute: true };
    const policy = (mode: 'contributing' | 'draining' | 'paused') => ({
      mode,
      reason: mode === 'contributing' ? null : ('paused' as const),
      sentence: `Policy: ${mode}`,
      since: new Date().toISOString(),
    });
    service.status = statusView({
      phase: 'contributing',
      contributing: true,
      policy: policy('contributing'),
      updatedAt: nextUpdatedAt(),
    });
    const s = await open(service);
    const pause = s.page.getByRole('button', { name: 'Pause after current tasks' });
    const now = s.page.getByRole('button', { name: 'Stop now' });
    await expect.poll(() => pause.isEnabled()).toBe(true);
    await pause.click();
    await expect.poll(() => service.callsTo('contribute:stop')).toEqual([['after-current']]);
    await expect
      .poll(() => text(s, 'stop-result'))
      .toBe('Pausing after the current tasks. Turn contributing on to start again.');
    await s.emit(
      'status:changed',
      statusView({ phase: 'draining', policy: policy('draining'), updatedAt: nextUpdatedAt() }),
    );
    await expect.poll(() => pause.isEnabled()).toBe(false);
    expect(await now.isEnabled()).toBe(true);
    await now.click();
    await expect.poll(() => service.callsTo('contribute:stop')).toEqual([['after-current'], ['now']]);
    await s.emit('status:changed', statusView({ phase: 'off', policy: policy('paused'), updatedAt: nextUpdatedAt() }));
    await expect.poll(() => now.isEnabled()).toBe(false);
    expect(await pause.isEnabled()).toBe(false);
  });

  it('"Leave this cluster" asks first, then shows what was removed and what was left behind', async () => {
    const service = new ScriptedService();
    service.settings = {
      ...service.settings,
      clusterAddress: 'ray://ray-head.lan:10001',
      managerUrl: 'https://manager.lan:8443',
    };
    service.leaveAnswer = {
      ok: true,
      report: {
        deregistered: true,
        removed: [
          'container ray-agent',
          'container ray-agent-tunnel',
          'volume ray-agent-state',
          'image ray-agent:dev',
          'the enrollment token',
          'the settings',
        ],
        leftovers: [],
      },
    };
    const s = await open(service);
    await s.page.getByTestId('tab-settings').click();
    const dialogs: string[] = [];
    let accept = false;
    s.page.on('dialog', (dialog) => {
      dialogs.push(dialog.message());
      void (accept ? dialog.accept() : dialog.dismiss());
    });
    await s.page.getByRole('button', { name: 'Leave this cluster' }).click();
    await expect.poll(() => dialogs.length).toBe(1);
    expect(dialogs[0]).toContain('deregistered from the manager');
    expect(service.callsTo('cluster:leave')).toEqual([]);

    accept = true;
    await s.page.getByRole('button', { name: 'Leave this cluster' }).click();
    await expect.poll(() => text(s, 'leave-result')).toBe('Left the cluster. Nothing is left behind.');
    expect(service.callsTo('cluster:leave')).toEqual([[]]);
    expect(await text(s, 'leave-deregistered')).toBe('Deregistered from the manager.');
    expect(await s.page.getByTestId('leave-removed').locator('li').allTextContents()).toEqual(
      service.leaveAnswer.report.removed,
    );
    expect(await s.page.getByTestId('leave-leftovers').locator('li').allTextContents()).toEqual(['Nothing.']);
    // The settings are gone: the form shows the defaults again, and the status page offers the playground.
    expect(await s.page.getByLabel('Cluster address').inputValue()).toBe('');
    mkdirSync(`${root}/e2e/artifacts`, { recursive: true });
    await s.page.locator('.card.leave').screenshot({ path: `${root}/e2e/artifacts/screenshot-leave-report.png` });

    // A run that could not remove everything says what is left.
    service.leaveAnswer = {
      ok: true,
      report: {
        deregistered: false,
        removed: ['container ray-agent'],
        leftovers: ['volume ray-agent-state (in use by another container)'],
      },
    };
    await s.page.getByRole('button', { name: 'Leave this cluster' }).click();
    await expect.poll(() => text(s, 'leave-result')).toBe('Left the cluster, with leftovers.');
    expect(await text(s, 'leave-deregistered')).toContain('Not deregistered');
    expect(await s.page.getByTestId('leave-leftovers').locator('li').allTextContents()).toEqual([
      'volume ray-agent-state (in use by another container)',
    ]);
  });
});
