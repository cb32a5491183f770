import { chmodSync, lstatSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { type AgentControlReply, AgentControlRequest } from '@ray-agent/protocol';

/**
 * How the controller's requests reach the running supervisor: `docker exec … node control.mjs '<json>'` starts a
 * second process in the container, which passes the request over this Unix socket in STATE_DIR and prints the
 * supervisor's one-line reply. The socket is 0600, owned by the agent's uid.
 *
 * Accepted risk: Ray tasks run as the same uid in the same container, so a task could send these requests too.
 * Both requests only reduce (or restore up to the offer on file) what this node gives the cluster: a task can pause
 * or shrink the node it runs on, never raise the kernel's limits (the controller's `docker update` sets those) or
 * reach anything outside the container.
 */
export const CONTROL_SOCKET_NAME = 'control.sock';
/** A request is one short JSON line; anything longer is not one. */
const MAX_REQUEST_BYTES = 16 * 1024;
const EXAMPLE = '{"command":"limits","cpus":2,"memoryBytes":4294967296,"throttleCpus":null}';

export function controlSocketPath(stateDir: string): string {
  return join(stateDir, CONTROL_SOCKET_NAME);
}

export type ParsedRequest = { ok: true; request: AgentControlRequest } | { ok: false; reply: AgentControlReply };

/** Validates a request; a bad one gets a reply naming the field, the problem and an example. */
export function parseControlRequest(text: string): ParsedRequest {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return refuse(`the request is not JSON (e.g. ${EXAMPLE})`);
  }
  const parsed = AgentControlRequest.safeParse(raw);
  if (parsed.success) return { ok: true, request: parsed.data };
  const issue = parsed.error.issues[0];
  const field = issue?.path.join('.') || 'command';
  return refuse(`${field}: ${issue?.message ?? 'invalid'} (e.g. ${EXAMPLE})`);
}

function refuse(message: string): ParsedRequest {
  return { ok: false, reply: { ok: false, message: message.slice(0, 500) } };
}

export type ControlHandler = (request: AgentControlRequest) => Promise<AgentControlReply>;

/** Serves the control socket: one request line in, one reply line out, per connection. */
export async function serveControl(path: string, handle: ControlHandler): Promise<Server> {
  // A socket left by a previous run (kill -9, a container restart) would make listen fail with EADDRINUSE.
  try {
    if (lstatSync(path).isSocket()) rmSync(path);
  } catch {
    // none there
  }
  const server = createServer((socket) => serveOne(socket, handle));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve();
    });
  });
  chmodSync(path, 0o600);
  return server;
}

function serveOne(socket: Socket, handle: ControlHandler): void {
  let buffer = '';
  let answered = false;
  const answer = (reply: AgentControlReply) => {
    if (answered) return;
    answered = true;
    socket.end(`${JSON.stringify(reply)}\n`);
  };
  socket.setEncoding('utf8');
  socket.on('error', () => socket.destroy());
  socket.on('data', (chunk: string) => {
    if (answered) return;
    buffer += chunk;
    if (buffer.length > MAX_REQUEST_BYTES) {
      answer({ ok: false, message: `the request is longer than ${MAX_REQUEST_BYTES} bytes` });
      return;
    }
    const end = buffer.indexOf('\n');
    if (end < 0) return;
    const parsed = parseControlRequest(buffer.slice(0, end));
    if (!parsed.ok) {
      answer(parsed.reply);
      return;
    }
    handle(parsed.request).then(answer, (error: Error) =>
      answer({ ok: false, message: `the agent failed: ${error.message}`.slice(0, 500) }),
    );
  });
}
