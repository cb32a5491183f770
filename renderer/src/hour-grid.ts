import type { WeeklyHours } from '@ray-agent/protocol';

/**
 * The weekly schedule as a 7x24 grid of toggle buttons (Salad's and BOINC's weekly grid). Rows are shown Monday
 * first, stored Sunday first (protocol's WEEKDAYS). One tab stop for the whole grid (roving tabindex): arrow keys
 * move, Home/End go to the row's ends, Space or Enter toggles (the buttons' own behaviour).
 */
const DAY_NAMES = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
/** Display order: Monday first; values are indexes into WeeklyHours. */
const ROWS = [1, 2, 3, 4, 5, 6, 0];

export function hourLabel(day: number, hour: number): string {
  const two = (n: number) => String(n).padStart(2, '0');
  return `${DAY_NAMES[day]} ${two(hour)}:00–${two((hour + 1) % 24)}:00`;
}

export class HourGrid {
  readonly #root: HTMLElement;
  readonly #cells: HTMLButtonElement[][] = [];
  #hours: boolean[][] = ROWS.map(() => Array.from({ length: 24 }, () => false));
  #focus = { row: 0, hour: 0 };
  #onChange: () => void;

  constructor(root: HTMLElement, onChange: () => void = () => {}) {
    this.#root = root;
    this.#onChange = onChange;
    this.#build();
  }

  set(hours: WeeklyHours): void {
    this.#hours = hours.map((day) => [...day]);
    this.#render();
  }

  get(): WeeklyHours {
    return this.#hours.map((day) => [...day]);
  }

  setDisabled(disabled: boolean): void {
    this.#root.classList.toggle('disabled', disabled);
  }

  #build(): void {
    const head = document.createElement('div');
    head.className = 'grid-row grid-head';
    head.setAttribute('aria-hidden', 'true');
    head.append(document.createElement('span'));
    for (let hour = 0; hour < 24; hour++) {
      const label = document.createElement('span');
      label.className = 'grid-hour';
      label.textContent = hour % 3 === 0 ? String(hour) : '';
      head.append(label);
    }
    this.#root.append(head);
    ROWS.forEach((day, row) => {
      const line = document.createElement('div');
      line.className = 'grid-row';
      const name = document.createElement('span');
      name.className = 'grid-day';
      name.setAttribute('aria-hidden', 'true');
      name.textContent = (DAY_NAMES[day] ?? '').slice(0, 3);
      line.append(name);
      const cells: HTMLButtonElement[] = [];
      for (let hour = 0; hour < 24; hour++) {
        const cell = document.createElement('button');
        cell.type = 'button';
        cell.className = 'hour';
        cell.dataset.testid = `hour-${day}-${hour}`;
        cell.setAttribute('aria-label', hourLabel(day, hour));
        cell.tabIndex = row === 0 && hour === 0 ? 0 : -1;
        cell.addEventListener('click', () => this.#toggle(row, hour));
        cell.addEventListener('keydown', (event) => this.#key(event, row, hour));
        cell.addEventListener('focus', () => {
          this.#focus = { row, hour };
        });
        cells.push(cell);
        line.append(cell);
      }
      this.#cells.push(cells);
      this.#root.append(line);
    });
    this.#render();
  }

  #toggle(row: number, hour: number): void {
    const day = ROWS[row] ?? 0;
    const days = this.#hours[day];
    if (!days) return;
    days[hour] = !days[hour];
    this.#render();
    this.#onChange();
  }

  #key(event: KeyboardEvent, row: number, hour: number): void {
    const moves: Record<string, [number, number]> = {
      ArrowRight: [row, Math.min(23, hour + 1)],
      ArrowLeft: [row, Math.max(0, hour - 1)],
      ArrowDown: [Math.min(6, row + 1), hour],
      ArrowUp: [Math.max(0, row - 1), hour],
      Home: [row, 0],
      End: [row, 23],
    };
    const target = moves[event.key];
    if (!target) return;
    event.preventDefault();
    this.#moveFocus(target[0], target[1]);
  }

  #moveFocus(row: number, hour: number): void {
    const current = this.#cells[this.#focus.row]?.[this.#focus.hour];
    const next = this.#cells[row]?.[hour];
    if (!next) return;
    if (current) current.tabIndex = -1;
    next.tabIndex = 0;
    this.#focus = { row, hour };
    next.focus();
  }

  #render(): void {
    ROWS.forEach((day, row) => {
      for (let hour = 0; hour < 24; hour++) {
        const cell = this.#cells[row]?.[hour];
        if (!cell) continue;
        const on = this.#hours[day]?.[hour] === true;
        cell.setAttribute('aria-pressed', String(on));
      }
    });
  }
}
