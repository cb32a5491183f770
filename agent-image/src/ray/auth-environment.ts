/**
 * Ray's token authentication for a child process (the node, the preflight): the mode and the token's file, never the
 * token itself. A variable is visible in /proc/PID/environ of every Ray process and task; the file is read by Ray.
 */
export function rayAuthEnvironment(base: NodeJS.ProcessEnv, rayAuthTokenFile: string | undefined): NodeJS.ProcessEnv {
  if (rayAuthTokenFile === undefined) return base;
  const { RAY_AUTH_TOKEN: _inherited, ...env } = base;
  return { ...env, RAY_AUTH_MODE: 'token', RAY_AUTH_TOKEN_PATH: rayAuthTokenFile };
}
