import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';

/** Where the committed OpenAPI document lives. */
export const OPENAPI_FILE = fileURLToPath(new URL('../openapi.json', import.meta.url));

const DOC_ID = 'ray-agent-manager-openapi';
const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'];

interface HeaderSpec {
  required?: boolean;
  schema?: { type?: string };
}

interface Operation {
  requestBody?: { content?: Record<string, { schema?: unknown }> };
  responses?: Record<string, { content?: Record<string, { schema?: unknown }>; headers?: Record<string, HeaderSpec> }>;
}

interface Loaded {
  ajv: Ajv2020;
  paths: Record<string, Record<string, Operation>>;
  matchers: Array<{ template: string; regex: RegExp }>;
}

let loaded: Loaded | null = null;

// ajv-formats is CommonJS; its default export arrives wrapped depending on the loader.
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as unknown as (
  ajv: Ajv2020,
) => Ajv2020;

function escapePointer(segment: string): string {
  return segment.replace(/~/g, '~0').replace(/\//g, '~1');
}

function load(): Loaded {
  if (loaded) return loaded;
  const doc = JSON.parse(readFileSync(OPENAPI_FILE, 'utf8')) as { paths: Loaded['paths'] };
  const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: true });
  addFormats(ajv);
  ajv.addSchema(doc as object, DOC_ID);
  const matchers = Object.keys(doc.paths).map((template) => ({
    template,
    regex: new RegExp(
      `^${template
        .split(/\{[^}]+\}/)
        .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
        .join('[^/]+')}$`,
    ),
  }));
  loaded = { ajv, paths: doc.paths, matchers };
  return loaded;
}

/**
 * Checks one request or response body against manager/openapi.json.
 * `path` is the concrete path (`/api/providers/prv-abc`, a query string is ignored), `method` any case,
 * `status` the response status (ignored for requests). With `headers` (a response's, names in lower case), the
 * headers the document describes for that status are checked too: present when required, and of their schema.
 * Returns the problems found; empty means valid.
 */
export function validateAgainstOpenApi(
  path: string,
  method: string,
  kind: 'request' | 'response',
  status: number | undefined,
  body: unknown,
  headers?: Record<string, string | string[] | undefined>,
): string[] {
  const { ajv, paths, matchers } = load();
  const bare = path.split('?')[0] ?? path;
  const match = matchers.find((m) => m.regex.test(bare));
  if (!match) return [`no path in the OpenAPI document matches ${bare}`];
  const m = method.toLowerCase();
  const operation = METHODS.includes(m) ? paths[match.template]?.[m] : undefined;
  if (!operation) return [`the OpenAPI document has no ${method.toUpperCase()} ${match.template}`];

  let pointer: string;
  let where: string;
  const headerProblems: string[] = [];
  if (kind === 'request') {
    where = `${method.toUpperCase()} ${match.template} request`;
    if (!operation.requestBody) {
      return body === undefined ? [] : [`${where}: the document describes no request body`];
    }
    if (!operation.requestBody.content?.['application/json']?.schema) return [`${where}: no application/json schema`];
    pointer = `/paths/${escapePointer(match.template)}/${m}/requestBody/content/application~1json/schema`;
  } else {
    if (status === undefined) return ['a response check needs the status code'];
    where = `${method.toUpperCase()} ${match.template} ${status} response`;
    const responses = operation.responses ?? {};
    const key = [String(status), `${String(status)[0]}XX`, 'default'].find((k) => k in responses);
    if (key === undefined) return [`${where}: status ${status} is not documented`];
    if (!responses[key]?.content?.['application/json']?.schema) return [`${where}: no application/json schema`];
    pointer = `/paths/${escapePointer(match.template)}/${m}/responses/${escapePointer(key)}/content/application~1json/schema`;
    if (headers !== undefined)
      headerProblems.push(...checkHeaders(ajv, responses[key]?.headers ?? {}, headers, where, pointer));
  }
  return [...headerProblems, ...validateBody(ajv, pointer, where, body)];
}

/** Response headers against the document: integer headers (Retry-After) are checked as the integer they spell. */
function checkHeaders(
  ajv: Ajv2020,
  specs: Record<string, HeaderSpec>,
  headers: Record<string, string | string[] | undefined>,
  where: string,
  bodyPointer: string,
): string[] {
  const problems: string[] = [];
  const responsePointer = bodyPointer.replace(/\/content\/application~1json\/schema$/, '');
  for (const [name, spec] of Object.entries(specs)) {
    const value = headers[name.toLowerCase()];
    if (value === undefined) {
      if (spec.required) problems.push(`${where}: header ${name} is missing`);
      continue;
    }
    const text = Array.isArray(value) ? value.join(',') : value;
    const typed = spec.schema?.type === 'integer' ? (/^-?\d+$/.test(text) ? Number(text) : text) : text;
    const validate = ajv.getSchema(`${DOC_ID}#${responsePointer}/headers/${escapePointer(name)}/schema`);
    if (!validate) problems.push(`${where}: cannot compile the schema of header ${name}`);
    else if (!validate(typed))
      problems.push(`${where}: header ${name} ${JSON.stringify(text)} does not match its schema`);
  }
  return problems;
}

function validateBody(ajv: Ajv2020, pointer: string, where: string, body: unknown): string[] {
  const validate = ajv.getSchema(`${DOC_ID}#${pointer}`);
  if (!validate) return [`${where}: cannot compile the schema at ${pointer}`];
  if (validate(body)) return [];
  return (validate.errors ?? []).map(
    (e) =>
      `${where}: ${e.instancePath === '' ? '(body)' : e.instancePath} ${e.message ?? 'is invalid'}${
        e.keyword === 'additionalProperties'
          ? ` (${String((e.params as { additionalProperty?: string }).additionalProperty)})`
          : ''
      }`,
  );
}
