import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import { load } from 'js-yaml';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));
const config = load(readFileSync(`${root}/electron-builder.yml`, 'utf8'), {
  filename: 'electron-builder.yml',
}) as Record<
  string,
  // biome-ignore lint/suspicious/noExplicitAny: the YAML is checked against the schema below, then read loosely.
  any
>;

describe('electron-builder.yml', () => {
  it('validates against the JSON schema electron-builder ships', () => {
    const schema = JSON.parse(readFileSync(`${root}/node_modules/app-builder-lib/scheme.json`, 'utf8'));
    // The schema uses keywords ajv does not know (e.g. "deprecated" notes); strict mode would reject the schema itself.
    const validate = new Ajv({ allErrors: true, strict: false }).compile(schema);
    const valid = validate(config);
    expect(validate.errors ?? []).toEqual([]);
    expect(valid).toBe(true);
  });

  it('the schema check is real: a wrong type is reported', () => {
    const schema = JSON.parse(readFileSync(`${root}/node_modules/app-builder-lib/scheme.json`, 'utf8'));
    const validate = new Ajv({ allErrors: true, strict: false }).compile(schema);
    expect(validate({ ...config, mac: { ...config.mac, hardenedRuntime: 'yes' } })).toBe(false);
    expect(validate({ ...config, notAnOption: true })).toBe(false);
  });

  it("electron-builder's own loader and validator accept it, and the app metadata it packages is complete", async () => {
    // app-builder-lib is CommonJS without an exports map for these internals; they are what `electron-builder` runs.
    const require = createRequire(import.meta.url);
    const { getConfig, validateConfiguration } = require('app-builder-lib/out/util/config/config.js');
    const { checkMetadata } = require('app-builder-lib/out/util/packageMetadata.js');
    const loaded = await getConfig(root, null, null);
    expect(loaded.appId).toBe('io.ray-agent.tray');
    await expect(validateConfiguration(loaded, { isEnabled: false, add() {} })).resolves.toBeUndefined();
    // What packager.js does: the root package.json merged with extraMetadata must have a name and a version.
    const pkg = JSON.parse(readFileSync(`${root}/package.json`, 'utf8'));
    const metadata = { ...pkg, ...loaded.extraMetadata };
    expect(() => checkMetadata(metadata, metadata, `${root}/package.json`, `${root}/package.json`)).not.toThrow();
    expect(() => checkMetadata(pkg, pkg, 'package.json', 'package.json')).toThrow(/version/);
  });

  it('names, targets and publishing are what the release needs', () => {
    expect(config.appId).toBe('io.ray-agent.tray');
    expect(config.productName).toBe('Ray Agent');
    expect(config.directories.output).toBe('release/');
    expect(config.extraMetadata.main).toBe('electron/dist/main.cjs');
    expect(config.win.target).toEqual([{ target: 'nsis', arch: ['x64', 'arm64'] }]);
    expect(config.mac.target).toEqual([{ target: 'dmg', arch: ['x64', 'arm64'] }]);
    expect(config.mac.category).toBe('public.app-category.utilities');
    expect(config.mac.hardenedRuntime).toBe(true);
    expect(config.linux.target).toEqual(['AppImage', 'deb']);
    expect(config.linux.category).toBe('Utility');
    expect(config.publish).toEqual({ provider: 'github', owner: 'ray-agent', repo: 'ray-agent' });
    expect(config.electronFuses.runAsNode).toBe(false);
  });

  it('what it points at exists: the main bundle name the build writes, the icons, the packaged folders', () => {
    const build = readFileSync(`${root}/electron/build.mjs`, 'utf8');
    expect(build).toContain(`outfile: '${config.extraMetadata.main}'`);
    for (const platform of ['win', 'mac', 'linux']) expect(existsSync(`${root}/${config[platform].icon}`)).toBe(true);
    expect(config.files).toEqual(
      expect.arrayContaining(['electron/dist/**', 'renderer/dist/**', 'electron/assets/**']),
    );
  });
});
