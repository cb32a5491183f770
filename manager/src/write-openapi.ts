import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { renderOpenApiDocument } from './openapi.js';

/** `npm run openapi -w manager`: regenerates manager/openapi.json from the protocol's zod schemas. */
const target = fileURLToPath(new URL('../openapi.json', import.meta.url));
writeFileSync(target, renderOpenApiDocument());
process.stdout.write(`wrote ${target}\n`);
