import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { typesCompatible, typeName } from '../../../web/js/model/types.js';
import { fixture } from './helpers.mjs';

const { cases } = JSON.parse(readFileSync(fixture('type_cases.json'), 'utf8'));

test('socket rule matches the table shared with graph/types.py', () => {
  for (const [out, inp, expected] of cases) {
    assert.equal(typesCompatible(out, inp), expected, `${JSON.stringify(out)} -> ${JSON.stringify(inp)}`);
  }
});

test('combos are named COMBO', () => {
  assert.equal(typeName(['a', 'b']), 'COMBO');
  assert.equal(typeName('IMAGE'), 'IMAGE');
});
