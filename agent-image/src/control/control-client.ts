import { connect } from 'node:net';
import { type AgentControlReply, AgentControlReply as ReplySchema, STATE_DIR } from '@ray-agent/protocol';
import { controlSocketPath, parseControlRequest } from './control-socket.js';

/**
 * The control bundle (AGENT_CONTROL_BUNDLE): `docker exec <agent> node /opt/ray-agent/control.mjs '<request JSON>'`
 * hands the request to the running agent and prints its one-line AgentControlReply; exit 0 when ok, 1 otherwise.
 */
/** Beyond a drain's own deadline: Ray's stop, the leftover kill, Python starts on a loaded machine. */
const MARGIN_MS = 60_000;

export async function sendControl(text: string | undefined, stateDir: string): Promise<AgentControlReply> {
  if (text === undefined)
    return {
      ok: false,
      message: 'no request: give one JSON argument (e.g. {"command":"drain","deadlineSeconds":60,"reason":"pause"})',
    };
  const parsed = parseControlRequest(text);
  if (!parsed.ok) return parsed.reply;
  const { request } = parsed;
  const waitMs = (request.command === 'drain' ? request.deadlineSeconds * 1000 : 0) + MARGIN_MS;
  const path = controlSocketPath(stateDir);
  return new Promise((resolve) => {
    const socket = connect(path);
    let buffer = '';
    const done = (reply: AgentControlReply) => {
      socket.destroy();
      clearTimeout(timer);
      resolve(reply);
    };
    const timer = setTimeout(
      () => done({ ok: false, message: `the agent did not answer within ${Math.round(waitMs / 1000)} s` }),
      waitMs,
    );
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(`${JSON.stringify(request)}\n`));
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      const end = buffer.indexOf('\n');
      if (end < 0) return;
      const reply = ReplySchema.safeParse(safeJson(buffer.slice(0, end)));
      done(reply.success ? reply.data : { ok: false, message: 'the agent answered with something not a reply' });
    });
    socket.on('error', (error: NodeJS.ErrnoException) =>
      done({
        ok: false,
        message:
          error.code === 'ENOENT' || error.code === 'ECONNREFUSED'
            ? `the agent is not running or still starting (nothing listens on ${path})`
            : `cannot reach the agent at ${path}: ${error.message}`,
      }),
    );
    socket.on('end', () => done({ ok: false, message: 'the agent closed the connection without a reply' }));
  });
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** The bundle's entry (control-main.ts runs it). */
export async function controlMain(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const reply = await sendControl(argv[2], env.STATE_DIR?.trim() || STATE_DIR);
  process.stdout.write(`${JSON.stringify(reply)}\n`);
  return reply.ok ? 0 : 1;
}
