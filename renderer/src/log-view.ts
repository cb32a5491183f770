import type { RayAgentApi } from '@ray-agent/protocol';
import { byTestId, errorMessage, setText } from './dom.js';
import { LogBuffer } from './log-buffer.js';

export const LOG_LINES = 2000;

/** The agent's log: the last lines on open, then live chunks, never more than LOG_LINES lines in the page. */
export class LogView {
  readonly #buffer = new LogBuffer(LOG_LINES);
  /** Chunks that arrive while the initial tail is in flight, applied after it. */
  #pending: string[] | null = [];

  constructor(api: RayAgentApi) {
    api.on('logs:data', (chunk) => {
      if (this.#pending) this.#pending.push(chunk);
      else this.#append(chunk);
    });
    api['logs:tail'](LOG_LINES).then(
      (text) => this.#start(text),
      (error) => this.#start(`(The agent's log could not be read: ${errorMessage(error)})\n`),
    );
  }

  #start(text: string): void {
    this.#buffer.reset(text);
    const pending = this.#pending ?? [];
    this.#pending = null;
    for (const chunk of pending) this.#buffer.append(chunk);
    this.#render();
  }

  #append(chunk: string): void {
    this.#buffer.append(chunk);
    this.#render();
  }

  #render(): void {
    const output = byTestId('log-output');
    // Follow the end only when the person is already there, so scrolling back to read is not yanked away.
    const atEnd = output.scrollHeight - output.scrollTop - output.clientHeight < 24;
    output.textContent = this.#buffer.text();
    if (atEnd) output.scrollTop = output.scrollHeight;
    const count = this.#buffer.lines().length;
    setText('log-count', `${count} ${count === 1 ? 'line' : 'lines'} (the last ${LOG_LINES} are kept)`);
  }
}
