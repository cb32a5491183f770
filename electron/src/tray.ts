import path from 'node:path';
import { TRAY_ACTIONS, type TrayItem, type TrayModel, trayModel } from '@ray-agent/controller/tray-menu';
import type { Settings, StatusView, StopMode } from '@ray-agent/protocol';
import { Menu, type MenuItemConstructorOptions, nativeImage, Tray } from 'electron';
import { trayIconFile } from './tray-icons.js';

export interface TrayActions {
  setContribute(on: boolean): void;
  /** "Pause after current tasks" (after-current) and "Stop now" (now). */
  stop(mode: StopMode): void;
  openWindow(): void;
  quit(): void;
}

/** Owns the system tray icon; rebuilt from trayModel() on every status or settings change (as Podman Desktop does). */
export class TrayController {
  readonly #tray: Tray;
  readonly #assets: string;
  readonly #actions: TrayActions;
  #model: TrayModel | null = null;

  constructor(assetsDir: string, actions: TrayActions) {
    this.#assets = assetsDir;
    this.#actions = actions;
    this.#tray = new Tray(this.#image('off'));
    this.#tray.setToolTip('Ray Agent');
    // Windows and most Linux hosts open the window on a left click; macOS shows the menu, as it should.
    if (process.platform !== 'darwin') this.#tray.on('click', () => actions.openWindow());
  }

  /** The last model shown (read by the packaged-app tests through the e2e hook). */
  get model(): TrayModel | null {
    return this.#model;
  }

  update(view: StatusView, settings: Pick<Settings, 'contribute'>): void {
    const model = trayModel(view, settings, process.platform);
    if (this.#model?.icon !== model.icon) this.#tray.setImage(this.#image(model.icon));
    this.#tray.setToolTip(model.tooltip);
    this.#tray.setContextMenu(Menu.buildFromTemplate(model.items.map((item) => this.#menuItem(item))));
    this.#model = model;
  }

  destroy(): void {
    this.#tray.destroy();
  }

  #image(icon: TrayModel['icon']) {
    const image = nativeImage.createFromPath(path.join(this.#assets, trayIconFile(icon, process.platform)));
    if (process.platform === 'darwin') image.setTemplateImage(true);
    return image;
  }

  #menuItem(item: TrayItem): MenuItemConstructorOptions {
    if (item.type === 'separator') return { type: 'separator', id: item.id };
    const options: MenuItemConstructorOptions = {
      id: item.id,
      label: item.label,
      type: item.type ?? 'normal',
      enabled: item.enabled ?? true,
    };
    if (item.type === 'checkbox') options.checked = item.checked ?? false;
    switch (item.id) {
      case TRAY_ACTIONS.contribute:
        // Electron flips `checked` before calling click; the menu's new state is the request.
        options.click = (menuItem) => this.#actions.setContribute(menuItem.checked);
        break;
      case TRAY_ACTIONS.pauseAfterCurrent:
        options.click = () => this.#actions.stop('after-current');
        break;
      case TRAY_ACTIONS.stopNow:
        options.click = () => this.#actions.stop('now');
        break;
      case TRAY_ACTIONS.open:
        options.click = () => this.#actions.openWindow();
        break;
      case TRAY_ACTIONS.quit:
        options.click = () => this.#actions.quit();
        break;
    }
    return options;
  }
}
