/** Elements are found by their stable data-testid: the same handles the tests use. */
export function byTestId<T extends HTMLElement = HTMLElement>(id: string, root: ParentNode = document): T {
  const found = root.querySelector<T>(`[data-testid="${id}"]`);
  if (!found) throw new Error(`The page is missing [data-testid="${id}"]`);
  return found;
}

export function setText(id: string, text: string): void {
  byTestId(id).textContent = text;
}

export function show(id: string, visible: boolean): void {
  byTestId(id).hidden = !visible;
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
