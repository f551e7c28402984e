// The room rules of docs/architecture.md as a lint: which folder may import which, and no import circle between
// files. Reads the TypeScript sources (not dist/), so a new arrow fails here before it lands.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The table of docs/architecture.md: each room and the rooms it may import (besides itself). */
export const ROOMS: Record<string, readonly string[]> = {
  cli: ['server', 'tools', 'loadtest', 'engine', 'kernels', 'weights', 'lib'],
  server: ['engine', 'lib'],
  tools: ['engine', 'kernels', 'weights', 'lib'],
  loadtest: ['lib'],
  engine: ['kernels', 'weights', 'lib'],
  kernels: ['lib'],
  weights: ['lib'],
  lib: [],
  test: ['cli', 'server', 'tools', 'loadtest', 'engine', 'kernels', 'weights', 'lib'],
};

function sources(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

/** Relative imports of a file (static, dynamic and `import('…')` types), as repository paths of .ts files. */
function imports(file: string): string[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  const found = [...text.matchAll(/(?:from\s+|import\s*\(\s*|import\s+)'(\.{1,2}\/[^']+)'/g)].map((m) => m[1]!);
  return found.map((p) => relative(ROOT, resolve(ROOT, dirname(file), p)).replace(/\.js$/, '.ts'));
}

const room = (file: string) => file.split('/')[0]!;
const files = Object.keys(ROOMS).flatMap(sources);

test('rooms import only the rooms below them (docs/architecture.md, "Rooms")', () => {
  const bad: string[] = [];
  for (const f of files) {
    for (const target of imports(f)) {
      const from = room(f),
        to = room(target);
      if (to !== from && !ROOMS[from]!.includes(to))
        bad.push(`${f} → ${target} (${from} may import ${ROOMS[from]!.join(', ') || 'nothing'})`);
    }
  }
  assert.deepEqual(bad, []);
});

test('no import circle between files', () => {
  const graph = new Map(files.map((f) => [f, imports(f).filter((t) => files.includes(t))]));
  const state = new Map<string, 'open' | 'done'>(),
    circles: string[] = [];
  const visit = (f: string, path: string[]) => {
    if (state.get(f) === 'done') return;
    if (state.get(f) === 'open') return void circles.push([...path.slice(path.indexOf(f)), f].join(' → '));
    state.set(f, 'open');
    for (const t of graph.get(f)!) visit(t, [...path, f]);
    state.set(f, 'done');
  };
  for (const f of files) visit(f, []);
  assert.deepEqual(circles, []);
});

test('the lint sees the imports it checks', () => {
  // a guard against a regexp that silently matches nothing
  assert.ok(files.length > 50, `${files.length} source files`);
  assert.ok(imports('cli/fury.ts').includes('cli/command.ts'));
  assert.ok(imports('engine/open.ts').includes('kernels/webgpu/backend.ts'), 'dynamic import seen');
});
