// The README's request-field table is the one server/openai/fields.ts generates, and every field the schemas know is
// documented there (cells compared trimmed: prettier pads the README's table).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { FIELD_NOTES, fieldTable } from '../../server/openai/fields.js';
import { ChatCompletionRequest, CompletionRequest, knownFields } from '../../server/openai/schemas.js';

const rows = (md: string) =>
  md
    .trim()
    .split('\n')
    .map((l) =>
      l
        .split('|')
        .map((c) => c.trim())
        .map((c) => (/^-+$/.test(c) ? '---' : c))
        .join('|'),
    );

test('README: the request-field table equals the generated one; every known field is documented', () => {
  const known = [...knownFields(CompletionRequest), ...knownFields(ChatCompletionRequest)];
  const missing = known.filter((f) => !(f in FIELD_NOTES));
  assert.deepEqual(missing, [], 'fields without a note in server/openai/fields.ts');
  const stale = Object.keys(FIELD_NOTES).filter((f) => !known.includes(f));
  assert.deepEqual(stale, [], 'notes for fields the schemas do not know');
  const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
  const m = /<!-- fields:begin -->([\s\S]*?)<!-- fields:end -->/.exec(readme);
  assert.ok(m, 'the README has the fields markers');
  assert.deepEqual(
    rows(m[1]!),
    rows(fieldTable()),
    'regenerate: node -e "import(\'./dist/server/openai/fields.js\').then(m => console.log(m.fieldTable()))"',
  );
});
