import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { type LeaveReport, ProviderCredential, ProviderId, STATE_DIR } from '@ray-agent/protocol';
import type Dockerode from 'dockerode';
import { z } from 'zod';
import type { AgentContainer } from '../container/agent-container.js';
import {
  LABEL_INSTANCE,
  LABEL_MANAGED,
  LABEL_ROLE,
  spillVolumeName,
  stateVolumeName,
  tunnelVolumeName,
} from '../container/agent-container-spec.js';
import { firstFileOf } from '../container/state-volume-secrets.js';
import { deregisterProvider } from './manager-deregister.js';
import { CONFIG_FILE } from './settings-store.js';
import type { TokenVault } from './token-vault.js';

/** Where the agent keeps its provider ID and credential (agent-image/src/state/state-store.ts, `credentials.json`). */
export const CREDENTIALS_FILE = `${STATE_DIR}/credentials.json`;
/**
 * In the settings directory while a leave is under way, once the manager was told: a leave cut short after the
 * state volume (with the credential) is gone still reports `deregistered` when run again. Removed by the run that
 * finds nothing left.
 */
export const LEAVE_MARKER_FILE = 'leave.json';
/** The role label of the short-lived container that reads a state volume no agent container mounts any more. */
export const LEAVE_READER_ROLE = 'leave-reader';

export interface LeaveDeps {
  docker: Dockerode;
  agent: AgentContainer;
  /** The settings directory: `config.json` (the settings) lives there. */
  settingsDir: string;
  vault: TokenVault;
  /** The manager as the settings name it (base URL or `.../api/register`). */
  managerUrl: string;
  managerCaPem?: string | null;
  /** The agent image the settings name; removed when no container uses it. */
  image?: string;
  log?: (line: string) => void;
}

/** Only the fields leaving needs; the agent's own schema (state-store.ts) is stricter about the rest. */
const SavedCredentials = z.object({ providerId: ProviderId, credential: ProviderCredential });

/** A step that did not do its part. `about` names the thing the final query can find again (null: it cannot). */
interface Failure {
  about: string | null;
  line: string;
}

/** Something the final query found, under the same key a failed step used. */
interface Found {
  about: string;
  line: string;
}

/**
 * "Leave this cluster": drain and stop the agent, tell the manager this provider leaves, remove the containers,
 * their volumes, the image when nothing else uses it, the saved token and the settings; then look for what is
 * still there. Every step runs whatever happened before it, and each is safe to repeat, so a leave cut short at
 * any instant (kill -9, power loss) finishes when run again. `leftovers` is what the final query finds (with the
 * reason a step gave, if any) plus what cannot be queried (the manager was not told); empty on a clean run.
 */
export async function leaveCluster(deps: LeaveDeps): Promise<LeaveReport> {
  const { docker, agent } = deps;
  const log = deps.log ?? (() => {});
  const name = agent.name;
  const removed: string[] = [];
  const failures: Failure[] = [];
  const fail = (about: string | null, line: string) => {
    failures.push({ about, line });
    log(`leave: ${about ?? 'manager'}: ${line}`);
  };

  // a. The agent drains (running tasks finish) and stops, then its tunnel.
  try {
    await agent.down();
    log('leave: the agent stopped');
  } catch (error) {
    fail(`container:${name}`, `it could not be stopped (${messageOf(error)})`);
  }

  // What the engine holds of ours now, read before anything is removed: the images they run are candidates too.
  const images = new Set<string>(deps.image === undefined ? [] : [deps.image]);
  let ours: Dockerode.ContainerInfo[] = [];
  try {
    ours = await ourContainers(docker, name);
    for (const info of ours) if (info.Labels?.[LABEL_ROLE] !== LEAVE_READER_ROLE) images.add(info.Image);
  } catch (error) {
    fail(null, `the Docker Engine could not be asked for the agent's containers (${messageOf(error)})`);
  }

  // b. Deregister, with the credential on the (stopped) agent's state volume.
  const marker = path.join(deps.settingsDir, LEAVE_MARKER_FILE);
  let deregistered = false;
  const saved = await readCredentials(docker, name, ours, images).catch((error: unknown) => ({
    problem: `the credential on the state volume could not be read (${messageOf(error)})`,
  }));
  if (saved === null && readMarker(marker) !== null) {
    deregistered = true;
    log(`leave: provider ${readMarker(marker)} was deregistered by a leave that was cut short`);
  } else if (saved === null)
    log('leave: no credential on the state volume (never registered): nothing to tell the manager');
  else if ('problem' in saved) fail(null, `the manager was not told: ${saved.problem}`);
  else {
    const result = await deregisterProvider({
      managerUrl: deps.managerUrl,
      credential: saved.credential,
      caPem: deps.managerCaPem ?? null,
    });
    if (result.ok || result.alreadyGone) writeMarker(marker, saved.providerId, log);
    if (result.ok) {
      deregistered = true;
      removed.push(`provider ${result.providerId} at the manager (deregistered)`);
      log(`leave: deregistered provider ${result.providerId}`);
    } else if (result.alreadyGone) {
      // A leave run before (cut short after this step), or the operator revoked it: the manager is done with it.
      deregistered = true;
      log(`leave: provider ${saved.providerId} was gone at the manager already (${result.error})`);
    } else {
      fail(
        null,
        `the manager was not told: ${result.error} (provider ${saved.providerId}; the cluster's operator can revoke it)`,
      );
    }
  }

  // c. The containers (the agent, its tunnel, a reader left by an interrupted leave), their volumes, the image.
  try {
    for (const info of await ourContainers(docker, name)) {
      const label = containerName(info);
      try {
        await docker.getContainer(info.Id).remove({ force: true, v: true });
        removed.push(`the container ${label}`);
        log(`leave: removed the container ${label}`);
      } catch (error) {
        if (statusOf(error) !== 404) fail(`container:${label}`, `it could not be removed (${messageOf(error)})`);
      }
    }
  } catch (error) {
    fail(null, `the Docker Engine could not be asked for the agent's containers (${messageOf(error)})`);
  }
  try {
    for (const volume of await ourVolumes(docker, name)) {
      try {
        await docker.getVolume(volume).remove();
        removed.push(`the volume ${volume}`);
        log(`leave: removed the volume ${volume}`);
      } catch (error) {
        if (statusOf(error) !== 404) fail(`volume:${volume}`, `it could not be removed (${messageOf(error)})`);
      }
    }
  } catch (error) {
    fail(null, `the Docker Engine could not be asked for the agent's volumes (${messageOf(error)})`);
  }
  for (const image of images) {
    try {
      const users = await imageUsers(docker, image);
      if (users === null) continue; // not here (removed before, or never pulled)
      if (users.length > 0) {
        log(`leave: kept the image ${image}: other containers use it (${users.join(', ')})`);
        continue;
      }
      await docker.getImage(image).remove();
      removed.push(`the image ${image}`);
      log(`leave: removed the image ${image}`);
    } catch (error) {
      if (statusOf(error) !== 404) fail(`image:${image}`, `it could not be removed (${messageOf(error)})`);
    }
  }

  // d. The saved enrollment token and the settings.
  try {
    const had = existsSync(deps.vault.file);
    deps.vault.clear();
    for (const stray of strayFiles(path.dirname(deps.vault.file), path.basename(deps.vault.file), true))
      rmSync(stray, { force: true });
    if (had) removed.push('the saved enrollment token');
  } catch (error) {
    fail(`file:${deps.vault.file}`, `it could not be removed (${messageOf(error)})`);
  }
  for (const file of settingsFiles(deps.settingsDir)) {
    try {
      rmSync(file, { force: true });
      removed.push(file === path.join(deps.settingsDir, CONFIG_FILE) ? 'the settings' : `the file ${file}`);
    } catch (error) {
      fail(`file:${file}`, `it could not be removed (${messageOf(error)})`);
    }
  }

  // e. What is left, as the engine and the file system say now.
  const found: Found[] = [];
  let engineAnswered = true;
  try {
    for (const info of await ourContainers(docker, name))
      found.push({
        about: `container:${containerName(info)}`,
        line: `the container ${containerName(info)} (${info.State})`,
      });
    for (const volume of await ourVolumes(docker, name))
      found.push({ about: `volume:${volume}`, line: `the volume ${volume}` });
    for (const image of images) {
      const users = await imageUsers(docker, image);
      if (users !== null && users.length === 0) found.push({ about: `image:${image}`, line: `the image ${image}` });
    }
  } catch (error) {
    engineAnswered = false;
    fail(null, `what is left in Docker could not be checked (${messageOf(error)})`);
  }
  if (existsSync(deps.vault.file))
    found.push({ about: `file:${deps.vault.file}`, line: `the saved enrollment token ${deps.vault.file}` });
  for (const file of settingsFiles(deps.settingsDir)) found.push({ about: `file:${file}`, line: `the file ${file}` });

  const leftovers: string[] = [];
  for (const item of found) {
    const reasons = failures.filter((f) => f.about === item.about).map((f) => f.line);
    leftovers.push(reasons.length > 0 ? `${item.line}: ${reasons.join('; ')}` : item.line);
  }
  const foundKeys = new Set(found.map((item) => item.about));
  for (const failure of failures) {
    if (failure.about === null) leftovers.push(failure.line);
    // The engine did not answer: a Docker step's failure cannot be checked, so it stands.
    else if (!engineAnswered && !failure.about.startsWith('file:')) leftovers.push(`${failure.about}: ${failure.line}`);
    else if (!foundKeys.has(failure.about)) log(`leave: ${failure.about} is gone after all`);
  }
  log(leftovers.length === 0 ? 'leave: nothing is left' : `leave: left over: ${leftovers.join(' | ')}`);
  // Done only once nothing is left: until then a run again must still know the manager was told.
  if (leftovers.length === 0)
    for (const file of strayFiles(deps.settingsDir, LEAVE_MARKER_FILE, false)) rmSync(file, { force: true });
  return { deregistered, removed, leftovers };
}

/** The provider a cut-short leave deregistered, or null. */
function readMarker(file: string): string | null {
  try {
    const data = JSON.parse(readFileSync(file, 'utf8')) as { providerId?: unknown };
    return typeof data.providerId === 'string' ? data.providerId : null;
  } catch {
    return null;
  }
}

/** Written whole or not at all (temp file, rename); a failure only costs the report's accuracy after a crash. */
function writeMarker(file: string, providerId: string, log: (line: string) => void): void {
  const temp = `${file}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    writeFileSync(temp, `${JSON.stringify({ providerId, deregisteredAt: new Date().toISOString() })}\n`, {
      mode: 0o600,
    });
    renameSync(temp, file);
  } catch (error) {
    rmSync(temp, { force: true });
    log(`leave: could not note the deregistration in ${file} (${messageOf(error)})`);
  }
}

/** Every container of this agent, whatever its role (the agent, its tunnel, a reader), running or not. */
async function ourContainers(docker: Dockerode, name: string): Promise<Dockerode.ContainerInfo[]> {
  return docker.listContainers({
    all: true,
    filters: { label: [`${LABEL_MANAGED}=true`, `${LABEL_INSTANCE}=${name}`] },
  });
}

/** The agent's volumes: those labelled as its own, and the two names it uses (a volume made before the labels). */
async function ourVolumes(docker: Dockerode, name: string): Promise<string[]> {
  const listed = await docker.listVolumes({
    filters: { label: [`${LABEL_MANAGED}=true`, `${LABEL_INSTANCE}=${name}`] },
  });
  const names = new Set((listed.Volumes ?? []).map((volume) => volume.Name));
  for (const volume of [stateVolumeName(name), spillVolumeName(name), tunnelVolumeName(name)]) {
    try {
      await docker.getVolume(volume).inspect();
      names.add(volume);
    } catch (error) {
      if (statusOf(error) !== 404) throw error;
    }
  }
  return [...names];
}

/** The containers (by name) that use an image, or null when the image is not here. */
async function imageUsers(docker: Dockerode, image: string): Promise<string[] | null> {
  let id: string;
  try {
    id = (await docker.getImage(image).inspect()).Id;
  } catch (error) {
    if (statusOf(error) === 404) return null;
    throw error;
  }
  const all = await docker.listContainers({ all: true });
  return all.filter((info) => info.ImageID === id).map(containerName);
}

/**
 * The provider's credential from the state volume: through a container that mounts it (the stopped agent, its
 * tunnel), else through a reader container made for it, never started. Null when there is none to read (no volume,
 * or never registered); `problem` when it is there but unreadable.
 */
async function readCredentials(
  docker: Dockerode,
  name: string,
  ours: Dockerode.ContainerInfo[],
  images: Set<string>,
): Promise<{ providerId: string; credential: string } | { problem: string } | null> {
  const mounting = ours.filter((info) =>
    (info.Mounts ?? []).some((mount) => mount.Name === stateVolumeName(name) && mount.Destination === STATE_DIR),
  );
  for (const info of mounting) {
    const text = await readFile(docker.getContainer(info.Id), CREDENTIALS_FILE).catch((error: unknown) =>
      statusOf(error) === 404 ? undefined : Promise.reject(error),
    );
    if (text === undefined) continue; // removed meanwhile
    return parseCredentials(text);
  }
  try {
    await docker.getVolume(stateVolumeName(name)).inspect();
  } catch (error) {
    if (statusOf(error) === 404) return null;
    throw error;
  }
  let image: string | null = null;
  for (const candidate of images) if ((await imageUsers(docker, candidate)) !== null) image = candidate;
  if (image === null) return { problem: 'no agent image is here to read the state volume with' };
  // Labelled as ours, so that the removal of our containers below (or the next leave) takes it away too.
  const reader = await docker.createContainer({
    name: `${name}-leave-${randomBytes(3).toString('hex')}`,
    Image: image,
    Entrypoint: ['true'],
    Labels: { [LABEL_MANAGED]: 'true', [LABEL_ROLE]: LEAVE_READER_ROLE, [LABEL_INSTANCE]: name },
    HostConfig: {
      NetworkMode: 'none',
      Mounts: [{ Type: 'volume', Source: stateVolumeName(name), Target: STATE_DIR, ReadOnly: true }],
    },
  });
  try {
    return parseCredentials(await readFile(reader, CREDENTIALS_FILE));
  } finally {
    await reader.remove({ force: true }).catch(() => undefined);
  }
}

/** One file of a container as text; null when it does not exist. */
async function readFile(container: Dockerode.Container, file: string): Promise<string | null> {
  let stream: NodeJS.ReadableStream;
  try {
    stream = await container.getArchive({ path: file });
  } catch (error) {
    // 404 of the file itself (the container is there): Docker says "Could not find the file".
    if (statusOf(error) === 404 && /file|path/i.test(messageOf(error))) return null;
    throw error;
  }
  const chunks: Buffer[] = [];
  for await (const chunk of stream as AsyncIterable<Buffer>) chunks.push(chunk);
  return firstFileOf(Buffer.concat(chunks));
}

function parseCredentials(
  text: string | null,
): { providerId: string; credential: string } | { problem: string } | null {
  if (text === null) return null;
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    data = undefined;
  }
  const parsed = SavedCredentials.safeParse(data);
  if (!parsed.success) return { problem: `the credentials file ${CREDENTIALS_FILE} on the state volume is unreadable` };
  return parsed.data;
}

/** The settings file and what its writers leave beside it: temp files, copies kept aside (`config.json.*`). */
function settingsFiles(dir: string): string[] {
  return strayFiles(dir, CONFIG_FILE, false);
}

/** `base` itself (unless `onlyStrays`) and the temp or kept-aside files named after it in `dir`. */
function strayFiles(dir: string, base: string, onlyStrays: boolean): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names
    .filter(
      (entry) =>
        (!onlyStrays && entry === base) ||
        entry.startsWith(`${base}.`) ||
        (entry.startsWith(`.${base}.`) && entry.endsWith('.tmp')),
    )
    .map((entry) => path.join(dir, entry));
}

function containerName(info: Dockerode.ContainerInfo): string {
  return (info.Names?.[0] ?? info.Id.slice(0, 12)).replace(/^\//, '');
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function statusOf(error: unknown): number | undefined {
  const status = (error as { statusCode?: unknown } | null)?.statusCode;
  return typeof status === 'number' ? status : undefined;
}
