// js-yaml 4 (installed for electron-builder) ships no types; this test reads YAML with its `load` only.
declare module 'js-yaml' {
  export function load(text: string, options?: { filename?: string }): unknown;
}
