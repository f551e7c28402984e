// Ajv's first error on a request body → the OpenAI error object: the message and `param` come from the annotations of
// the schema the error points into (schemas.ts). The value quoted back is bounded, whatever the client sent.
import type { ErrorObject } from 'ajv';
import { preview } from '../../lib/preview.js';
import { type ApiError, badRequest } from '../errors.js';

type Node = Record<string, unknown>;

const isSchema = (n: unknown): n is Node => typeof n === 'object' && n !== null && !Array.isArray(n);
const annotated = (n: Node) => 'x-error' in n || 'x-errors' in n || 'x-expected' in n || 'x-required' in n;

/** The schema nodes from the root to the keyword's parent, following an Ajv schemaPath ("#/properties/n/minimum"). */
function schemaNodes(root: Node, schemaPath: string): Node[] {
  const segs = schemaPath
    .replace(/^[^#]*#\/?/, '')
    .split('/')
    .filter(Boolean)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  const nodes: Node[] = [root];
  let cur: unknown = root;
  for (const s of segs.slice(0, -1)) {
    cur = (cur as Record<string, unknown>)?.[s];
    if (isSchema(cur)) nodes.push(cur);
  }
  return nodes;
}

/** Fill {0}, {1}, … with the array indices of the instance path. */
function fill(template: string, indices: string[]): string {
  return template.replace(/\{(\d)\}/g, (_m, i: string) => indices[Number(i)] ?? '?');
}

export function validationError(errors: readonly ErrorObject[], root: Node, body: unknown): ApiError {
  const e = errors[0]!;
  const path = e.instancePath
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  const indices = path.filter((s) => /^\d+$/.test(s));
  const field = path[0];
  if (!field && e.keyword === 'type') return badRequest(String(root['x-error']), null, 'invalid_json');
  const nodes = schemaNodes(root, e.schemaPath);
  if (e.keyword === 'required') {
    const missing = String((e.params as { missingProperty: string }).missingProperty);
    const prop = ((nodes.at(-1)!.properties ?? {}) as Record<string, Node>)[missing] ?? {};
    const own = (prop['x-required'] ?? prop['x-error']) as string | undefined;
    if (own) return badRequest(fill(own, indices), fill(String(prop['x-param'] ?? field ?? missing), indices));
  }
  const node = [...nodes].reverse().find(annotated) ?? {};
  const param = fill(String(node['x-param'] ?? field ?? ''), indices) || null;
  const perKeyword = (node['x-errors'] as Record<string, string> | undefined)?.[e.keyword];
  const message =
    perKeyword ??
    (node['x-error'] as string | undefined) ??
    (node['x-expected'] && field
      ? `'${field}' must be ${String(node['x-expected'])}, got ${preview((body as Node)?.[field])}`
      : null) ??
    `${field ? `'${path.join('.')}' ` : 'the request body '}${e.message ?? 'is invalid'}`;
  return badRequest(fill(message, indices), param);
}

/** Fastify's validation error (`err.validation`, schemaPath "<$id>#/…") as an OpenAI error, or null for any other. */
export function fromFastifyValidation(
  err: unknown,
  schemas: ReadonlyMap<string, Node>,
  body: unknown,
): ApiError | null {
  const errors = (err as { validation?: ErrorObject[] })?.validation;
  if (!Array.isArray(errors) || !errors.length) return null;
  const id = /^([^#]*)#/.exec(errors[0]!.schemaPath)?.[1] ?? '';
  return validationError(errors, schemas.get(id) ?? {}, body);
}
