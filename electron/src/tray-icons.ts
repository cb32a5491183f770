import type { TrayIcon } from '@ray-agent/controller/tray-menu';

/**
 * The file for a tray state. macOS wants monochrome "…Template" images that it tints for light and dark menu bars;
 * Windows and Linux get coloured ones. Electron adds the `@2x` variant next to each file by itself.
 */
export function trayIconFile(icon: TrayIcon, platform: NodeJS.Platform): string {
  return platform === 'darwin' ? `tray-${icon}Template.png` : `tray-${icon}.png`;
}
