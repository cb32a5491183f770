/** The last `limit` log lines, fed by chunks that may end mid-line. */
export class LogBuffer {
  readonly limit: number;
  #lines: string[] = [];
  #partial = '';

  constructor(limit = 2000) {
    this.limit = limit;
  }

  reset(text: string): void {
    this.#lines = [];
    this.#partial = '';
    this.append(text);
  }

  append(chunk: string): void {
    const parts = (this.#partial + chunk).split(/\r?\n/);
    this.#partial = parts.pop() ?? '';
    this.#lines.push(...parts);
    if (this.#lines.length > this.limit) this.#lines.splice(0, this.#lines.length - this.limit);
  }

  /** Complete lines, plus the unfinished one so a prompt-like last line still shows. */
  lines(): string[] {
    const all = this.#partial ? [...this.#lines, this.#partial] : [...this.#lines];
    return all.length > this.limit ? all.slice(all.length - this.limit) : all;
  }

  text(): string {
    return this.lines().join('\n');
  }
}
