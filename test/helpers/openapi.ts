// Contract checking against openapi.yaml: match a real request to its path template and
// operation, then check the response (status documented, required headers present, header
// values and JSON bodies valid against the documented schemas). Also records which
// (operation, status, error code) combinations were seen, for coverage checks.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Ajv2020 from 'ajv/dist/2020.js';
import type { ValidateFunction } from 'ajv';
import { parse as parseYaml } from 'yaml';

/** The document is plain parsed YAML, navigated dynamically; its shape is checked by the tests. */
export type Node = any;

// ajv is CommonJS: under NodeNext the default import is module.exports, whose .default is the class.
const Ajv = Ajv2020.default;

export const HTTP_METHODS = ['get', 'head', 'put', 'post', 'delete', 'patch', 'options', 'trace'] as const;

/** One request/response pair as it happened on the wire. */
export interface Exchange {
  method: string;
  /** Path plus query string, exactly as requested. */
  url: string;
  requestHeaders: Record<string, string>;
  requestBody?: Buffer;
  status: number;
  /** Response header lines as received: [name, value, name, value, …]. */
  rawHeaders: string[];
  body: Buffer;
}

export interface PathMatch { template: string; params: Record<string, string> }

export interface OperationRef { method: string; template: string; operation: Node }

/** Finds openapi.yaml by walking up from this file (works from test/ and dist/test/). */
export function findSpecFile(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'openapi.yaml');
    if (existsSync(candidate) && existsSync(join(dir, 'package.json'))) return candidate;
    const up = dirname(dir);
    if (up === dir) throw new Error('openapi.yaml not found above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
}

const SCHEMAS_ID = 'urn:berth:openapi:schemas';

/** Rewrites '#/components/schemas/X' refs so they resolve inside ajv. */
function rewriteRefs(v: Node): Node {
  if (Array.isArray(v)) return v.map(rewriteRefs);
  if (v && typeof v === 'object') {
    const out: Node = {};
    for (const [k, x] of Object.entries(v)) {
      if (k === '$ref' && typeof x === 'string') {
        if (!x.startsWith('#/components/schemas/')) throw new Error(`unsupported $ref inside a schema: ${x}`);
        out[k] = `${SCHEMAS_ID}#/$defs/${x.slice('#/components/schemas/'.length)}`;
      } else {
        out[k] = rewriteRefs(x);
      }
    }
    return out;
  }
  return v;
}

function isJsonType(mediaType: string): boolean {
  return mediaType === 'application/json' || mediaType.endsWith('+json');
}

function headerLines(raw: string[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    out.set(name, [...(out.get(name) ?? []), raw[i + 1]!]);
  }
  return out;
}

export class OpenApiContract {
  readonly doc: Node;
  /** Coverage keys: "METHOD template status" and "METHOD template status CODE". */
  readonly seen = new Set<string>();
  readonly #ajv: InstanceType<typeof Ajv>;
  readonly #compiled = new WeakMap<object, ValidateFunction>();
  readonly #matchers: { template: string; regex: RegExp; names: string[]; literal: number }[];

  constructor(doc: Node) {
    this.doc = doc;
    this.#ajv = new Ajv({ strict: true, strictTypes: false, allErrors: true });
    this.#ajv.addSchema({ $id: SCHEMAS_ID, $defs: rewriteRefs(doc.components?.schemas ?? {}) });
    this.#matchers = Object.keys(doc.paths ?? {}).map((template) => {
      const names: string[] = [];
      let literal = 0;
      const source = template.split(/(\{[^}]+\})/).map((part) => {
        const m = /^\{([^}]+)\}$/.exec(part);
        if (!m) { literal += part.length; return part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'); }
        names.push(m[1]!);
        // {name} spans path segments (repository names contain '/'), like the server's (.+).
        return m[1] === 'name' ? '(.+)' : '([^/]+)';
      }).join('');
      return { template, regex: new RegExp(`^${source}$`), names, literal };
    });
  }

  static load(file = findSpecFile()): OpenApiContract {
    return new OpenApiContract(parseYaml(readFileSync(file, 'utf8')));
  }

  /** Follows OpenAPI-level $refs ("#/components/…") to the referenced object. */
  resolve(node: Node): Node {
    let cur = node;
    for (let hops = 0; cur && typeof cur === 'object' && typeof cur.$ref === 'string'; hops++) {
      if (hops > 20) throw new Error(`$ref loop at ${node.$ref}`);
      const ref: string = cur.$ref;
      if (!ref.startsWith('#/')) throw new Error(`only local $refs are supported: ${ref}`);
      cur = ref.slice(2).split('/').map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
        .reduce((o: Node, key: string) => (o === undefined ? undefined : o[key]), this.doc);
      if (cur === undefined) throw new Error(`dangling $ref ${ref}`);
    }
    return cur;
  }

  /** The path template a concrete path belongs to; the most literal template wins. */
  matchPath(path: string): PathMatch | undefined {
    let best: { template: string; params: Record<string, string>; literal: number } | undefined;
    for (const m of this.#matchers) {
      const r = m.regex.exec(path);
      if (!r) continue;
      if (best && best.literal >= m.literal) continue;
      const params: Record<string, string> = {};
      m.names.forEach((n, i) => { params[n] = r[i + 1]!; });
      best = { template: m.template, params, literal: m.literal };
    }
    return best && { template: best.template, params: best.params };
  }

  operations(): OperationRef[] {
    const out: OperationRef[] = [];
    for (const [template, item] of Object.entries<Node>(this.doc.paths ?? {})) {
      for (const method of HTTP_METHODS) if (item[method]) out.push({ method: method.toUpperCase(), template, operation: item[method] });
    }
    return out;
  }

  /** Methods a path item documents, upper case. */
  methodsOf(template: string): string[] {
    const item = this.doc.paths[template];
    return HTTP_METHODS.filter((m) => item[m]).map((m) => m.toUpperCase());
  }

  validator(schema: Node): ValidateFunction {
    const cached = this.#compiled.get(schema);
    if (cached) return cached;
    const v = this.#ajv.compile(rewriteRefs(schema));
    this.#compiled.set(schema, v);
    return v;
  }

  /** Returns ajv's error text, or undefined when the value is valid. */
  validate(schema: Node, value: unknown): string | undefined {
    const v = this.validator(schema);
    return v(value) ? undefined : this.#ajv.errorsText(v.errors, { dataVar: 'value' });
  }

  /** Error codes a (resolved) response narrows ErrorResponse to, if it does. */
  codesOf(response: Node): string[] {
    const schema = response?.content?.['application/json']?.schema;
    const codes = schema?.properties?.errors?.items?.properties?.code?.enum;
    return Array.isArray(codes) ? codes : [];
  }

  /** Every coverage key the document implies (see `seen`). */
  expectedCoverage(): string[] {
    const keys: string[] = [];
    const add = (prefix: string, responses: Node, withCodes: boolean) => {
      for (const [status, r] of Object.entries<Node>(responses)) {
        keys.push(`${prefix} ${status}`);
        if (withCodes) for (const code of this.codesOf(this.resolve(r))) keys.push(`${prefix} ${status} ${code}`);
      }
    };
    for (const { method, template, operation } of this.operations()) add(`${method} ${template}`, operation.responses, method !== 'HEAD');
    for (const [template, item] of Object.entries<Node>(this.doc.paths)) {
      if (item['x-berth-other-methods']) add(`OTHER ${template}`, item['x-berth-other-methods'], true);
    }
    add('UNMATCHED', this.doc['x-berth-unmatched-requests'].responses, true);
    return keys;
  }

  /** Checks one exchange against the document; returns the problems found (empty = conforms). */
  check(x: Exchange): string[] {
    const problems: string[] = [];
    const where = `${x.method} ${x.url} → ${x.status}`;
    const [path, query = ''] = x.url.split(/\?(.*)/s, 2) as [string, string?];
    const match = this.matchPath(path);
    const item = match && this.doc.paths[match.template];
    const operation = item?.[x.method.toLowerCase()];

    let responses: Node;
    let prefix: string;
    if (!match) {
      responses = this.doc['x-berth-unmatched-requests']?.responses;
      prefix = 'UNMATCHED';
    } else if (!operation) {
      responses = item['x-berth-other-methods'];
      prefix = `OTHER ${match.template}`;
      if (!responses) return [`${where}: ${x.method} is not documented for ${match.template} and the path item has no x-berth-other-methods`];
    } else {
      responses = operation.responses;
      prefix = `${x.method} ${match.template}`;
      // Every query parameter sent must be documented for the operation.
      const documented = new Set([...(item.parameters ?? []), ...(operation.parameters ?? [])]
        .map((p: Node) => this.resolve(p)).filter((p: Node) => p.in === 'query').map((p: Node) => p.name));
      for (const key of new URLSearchParams(query).keys()) {
        if (!documented.has(key)) problems.push(`${where}: query parameter "${key}" is not documented`);
      }
    }
    const documentedResponse = responses?.[String(x.status)];
    if (!documentedResponse) {
      return [...problems, `${where}: status ${x.status} is not documented (documented: ${Object.keys(responses ?? {}).join(', ')})`];
    }
    const response = this.resolve(documentedResponse);
    this.seen.add(`${prefix} ${x.status}`);
    const lines = headerLines(x.rawHeaders);

    // Headers: required ones present, every documented one valid (each line on its own).
    for (const [name, raw] of Object.entries<Node>(response.headers ?? {})) {
      const header = this.resolve(raw);
      const values = lines.get(name.toLowerCase());
      if (!values) {
        if (header.required) problems.push(`${where}: required header ${name} is missing`);
        continue;
      }
      if (header.schema) {
        for (const v of values) {
          const err = this.validate(header.schema, v);
          if (err) problems.push(`${where}: header ${name}: ${JSON.stringify(v)}: ${err}`);
        }
      }
    }
    // A 405 on a /v2 path must list in Allow exactly the documented methods other than the one
    // refused: all of them for an unrouted method, the others for a routed one that is
    // switched off (DELETE while deletes are disabled); only the reads when the registry is read-only.
    if (match && x.status === 405) {
      const allow = (lines.get('allow') ?? []).join(', ').split(/\s*,\s*/).filter(Boolean).sort();
      const readOnly = /read-only/.test(x.body.toString('utf8'));
      const expected = this.methodsOf(match.template).filter((m) => m !== x.method.toUpperCase() && (!readOnly || m === 'GET' || m === 'HEAD')).sort();
      if (allow.join() !== expected.join()) problems.push(`${where}: Allow is ${allow.join(', ') || '(none)'}, the document implies ${expected.join(', ')}`);
    }

    // Body.
    const contentType = (lines.get('content-type')?.[0] ?? '').split(';')[0]!.trim().toLowerCase();
    const content = response.content as Node;
    if (content && contentType && !(contentType in content)) {
      problems.push(`${where}: Content-Type ${contentType} is not documented (documented: ${Object.keys(content).join(', ')})`);
    }
    if (x.method === 'HEAD') {
      if (x.body.length) problems.push(`${where}: a HEAD response has a body`);
    } else if (!content) {
      if (x.body.length) problems.push(`${where}: body of ${x.body.length} bytes, but the document declares no content`);
    } else if (!contentType) {
      problems.push(`${where}: no Content-Type, but the document declares content`);
    } else if (content[contentType] && isJsonType(contentType)) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(x.body.toString('utf8'));
      } catch {
        problems.push(`${where}: body is not JSON`);
      }
      const schema = content[contentType].schema;
      if (parsed !== undefined && schema) {
        const err = this.validate(schema, parsed);
        if (err) problems.push(`${where}: body: ${err}`);
        const code = (parsed as { errors?: { code?: unknown }[] }).errors?.[0]?.code;
        if (!err && typeof code === 'string') this.seen.add(`${prefix} ${x.status} ${code}`);
      }
    }

    // A request body the server accepted must fit the documented request body.
    if (operation?.requestBody && x.status < 300 && x.requestBody?.length) {
      const reqType = (x.requestHeaders['content-type'] ?? Object.entries(x.requestHeaders)
        .find(([k]) => k.toLowerCase() === 'content-type')?.[1] ?? '').split(';')[0]!.trim().toLowerCase();
      const media = this.resolve(operation.requestBody).content?.[reqType];
      if (!media) problems.push(`${where}: request Content-Type "${reqType}" is not documented`);
      else if (isJsonType(reqType) && media.schema) {
        const err = this.validate(media.schema, JSON.parse(x.requestBody.toString('utf8')));
        if (err) problems.push(`${where}: request body: ${err}`);
      }
    }
    return problems;
  }
}
