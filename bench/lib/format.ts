/** Number formatting shared by the report and the suites' detail tables. */

export const thousands = (n: number) => String(Math.round(n)).replace(/\B(?=(\d{3})+(?!\d))/g, ',');

/** About three significant digits (whole numbers with thousands separators from 100 up); '–' for a non-number. */
export function fmt(value: number, digits?: number): string {
  if (!Number.isFinite(value)) return '–';
  const d = digits ?? (Math.abs(value) >= 100 ? 0 : Math.abs(value) >= 10 ? 1 : Math.abs(value) >= 1 ? 2 : 3);
  const [whole, fraction] = Math.abs(value).toFixed(d).split('.');
  const negative = value < 0 && Number(value.toFixed(d)) !== 0;
  return `${negative ? '-' : ''}${thousands(Number(whole))}${fraction ? `.${fraction}` : ''}`;
}

/** A signed difference: "+0.31", "-0.05". */
export const signed = (value: number, digits?: number) => `${value >= 0 ? '+' : ''}${fmt(value, digits)}`;
