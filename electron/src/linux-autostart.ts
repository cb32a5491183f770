import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/**
 * Electron's app.setLoginItemSettings works on macOS and Windows only; Linux desktops start what is in
 * `$XDG_CONFIG_HOME/autostart/*.desktop` (the XDG Autostart spec), so the app writes or removes that file itself.
 */
export const AUTOSTART_FILE = 'io.ray-agent.tray.desktop';

/** Desktop Entry spec quoting: arguments in double quotes, with ", `, $ and \ escaped. */
function quoteExecArg(arg: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(arg) ? arg : `"${arg.replace(/(["`$\\])/g, '\\$1')}"`;
}

export function autostartEntry(command: string[]): string {
  return [
    '[Desktop Entry]',
    'Type=Application',
    'Name=Ray Agent',
    'Comment=Give spare compute to a Ray cluster',
    `Exec=${command.map(quoteExecArg).join(' ')}`,
    'Terminal=false',
    'X-GNOME-Autostart-enabled=true',
    '',
  ].join('\n');
}

export function autostartDir(env: Record<string, string | undefined>, homedir: string): string {
  const xdg = env.XDG_CONFIG_HOME;
  return path.join(xdg && path.isAbsolute(xdg) ? xdg : path.join(homedir, '.config'), 'autostart');
}

export function setLinuxAutostart(enabled: boolean, dir: string, command: string[]): void {
  const file = path.join(dir, AUTOSTART_FILE);
  if (!enabled) {
    rmSync(file, { force: true });
    return;
  }
  mkdirSync(dir, { recursive: true });
  writeFileSync(file, autostartEntry(command), { mode: 0o644 });
}
