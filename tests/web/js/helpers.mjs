// Shared set-up for the model tests: the fixture /object_info, a catalog and an empty document.
import { readFileSync } from 'node:fs';
import { NodeCatalog } from '../../../web/js/model/catalog.js';
import { GraphDocument } from '../../../web/js/model/graph-document.js';

export const fixture = (name) => new URL(`../fixtures/${name}`, import.meta.url);
export const objectInfo = JSON.parse(readFileSync(fixture('object_info.json'), 'utf8'));

export function newDoc(extraInfo = {}) {
  return new GraphDocument(new NodeCatalog({ ...objectInfo, ...extraInfo }));
}

export const slotOf = (list, name) => list.findIndex((s) => s.name === name);
