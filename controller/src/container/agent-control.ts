import { PassThrough } from 'node:stream';
import { AGENT_CONTROL_BUNDLE, AgentControlReply, AgentControlRequest } from '@ray-agent/protocol';
import type Dockerode from 'dockerode';

/** Why the agent could not be asked: the caller decides what each means (an older image is not a failure). */
export type AgentControlFailure =
  | 'no-bundle' // the image predates the control bundle
  | 'not-running' // no container, or it is stopped or restarting
  | 'bad-reply' // it answered, but not one AgentControlReply line
  | 'timeout';

export class AgentControlError extends Error {
  constructor(
    readonly failure: AgentControlFailure,
    message: string,
  ) {
    super(message);
    this.name = 'AgentControlError';
  }
}

/** Long enough for a Node start on a loaded 2-core machine; a drain's own wait is the agent's, not the exec's. */
const DEFAULT_TIMEOUT_MS = 20_000;
/** What is kept of the exec's output for an error message. */
const MAX_OUTPUT = 64 * 1024;

/**
 * Asks the running agent for something (new limits, a drain) through `docker exec <container> node
 * AGENT_CONTROL_BUNDLE '<json>'`: as the container's own user, with no port or socket opened to the host. Resolves
 * with the agent's reply, `ok: false` included (the caller decides); rejects with an AgentControlError when the
 * agent could not be asked or did not answer. A timeout leaves the exec'd process to finish on its own (Docker has
 * no way to kill an exec), so requests are idempotent on the agent's side.
 */
export async function agentControl(
  docker: Dockerode,
  container: string,
  request: AgentControlRequest,
  options: { timeoutMs?: number } = {},
): Promise<AgentControlReply> {
  const checked = AgentControlRequest.safeParse(request);
  if (!checked.success)
    throw new TypeError(
      `agent control request: ${checked.error.issues.map((issue) => `${issue.path.join('.') || 'request'}: ${issue.message}`).join('; ')} (e.g. {"command":"limits","cpus":2,"memoryBytes":4294967296,"throttleCpus":null})`,
    );
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const what = `the agent in ${container} (${request.command})`;
  let exec: Dockerode.Exec;
  try {
    exec = await docker.getContainer(container).exec({
      Cmd: ['node', AGENT_CONTROL_BUNDLE, JSON.stringify(checked.data)],
      AttachStdout: true,
      AttachStderr: true,
      AttachStdin: false,
      Tty: false,
    });
  } catch (error) {
    const status = (error as { statusCode?: unknown }).statusCode;
    if (status === 404) throw new AgentControlError('not-running', `cannot ask ${what}: there is no such container`);
    if (status === 409) throw new AgentControlError('not-running', `cannot ask ${what}: the container is not running`);
    throw error;
  }

  const output = await collect(exec, timeoutMs, what);
  const { ExitCode } = await exec.inspect();
  const stdout = output.stdout.trim();
  const stderr = output.stderr.trim();
  if (/Cannot find module/i.test(stderr) && stderr.includes(AGENT_CONTROL_BUNDLE))
    throw new AgentControlError(
      'no-bundle',
      `cannot ask ${what}: its image has no ${AGENT_CONTROL_BUNDLE} (an image older than live limits and drains)`,
    );
  const line =
    stdout
      .split('\n')
      .filter((text) => text.trim() !== '')
      .at(-1) ?? '';
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    throw new AgentControlError(
      'bad-reply',
      `${what} did not answer with a JSON line (exit code ${ExitCode ?? 'unknown'}): ${excerpt(stdout || stderr || '(no output)')}`,
    );
  }
  const reply = AgentControlReply.safeParse(parsed);
  if (!reply.success)
    throw new AgentControlError(
      'bad-reply',
      `${what} answered a line that is not a control reply (${reply.error.issues[0]?.path.join('.') ?? ''}: ${reply.error.issues[0]?.message ?? ''}): ${excerpt(line)}`,
    );
  return reply.data;
}

async function collect(
  exec: Dockerode.Exec,
  timeoutMs: number,
  what: string,
): Promise<{ stdout: string; stderr: string }> {
  const stream = (await exec.start({ hijack: true, stdin: false })) as NodeJS.ReadableStream & { destroy(): void };
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const text = { stdout: '', stderr: '' };
  stdout.on('data', (chunk: Buffer) => {
    if (text.stdout.length < MAX_OUTPUT) text.stdout += chunk.toString('utf8');
  });
  stderr.on('data', (chunk: Buffer) => {
    if (text.stderr.length < MAX_OUTPUT) text.stderr += chunk.toString('utf8');
  });
  // Without a TTY both streams come multiplexed in one, with 8-byte frame headers.
  exec.modem.demuxStream(stream, stdout, stderr);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      stream.destroy();
      reject(new AgentControlError('timeout', `${what} did not answer within ${Math.round(timeoutMs / 1000)} s`));
    }, timeoutMs);
    const done = () => {
      clearTimeout(timer);
      resolve();
    };
    stream.on('end', done);
    stream.on('close', done);
    stream.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
  return text;
}

function excerpt(text: string): string {
  const oneLine = text.replace(/\s+/g, ' ').trim();
  return oneLine.length > 300 ? `${oneLine.slice(0, 300)}…` : oneLine;
}
