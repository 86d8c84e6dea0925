// Socket compatibility: the same rule as the Python graph/types.py, so the editor refuses exactly
// the links that the server's validator would refuse. Types are ComfyUI's strings: exact names
// ("IMAGE"), comma unions ("FLOAT,INT"), the wildcard "*", and combos (a list of choices or "COMBO").
// tests/web/fixtures/type_cases.json is checked against both implementations.

export const ANY = '*';
export const COMBO = 'COMBO';

export function isCombo(type) {
  return Array.isArray(type) || type === COMBO;
}

/** The display name of a socket type; combos are all called COMBO. */
export function typeName(type) {
  return isCombo(type) ? COMBO : String(type);
}

function members(type) {
  return new Set(type.split(',').map((part) => part.trim()).filter(Boolean));
}

function sameType(a, b) {
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((v, i) => v === b[i]);
  return a === b;
}

/** True when a link from an output of `outputType` into an input of `inputType` is allowed. */
export function typesCompatible(outputType, inputType) {
  if (sameType(outputType, inputType)) return true;
  if (isCombo(inputType)) return isCombo(outputType) || outputType === ANY;
  if (isCombo(outputType)) {
    return inputType === ANY || (typeof inputType === 'string' && members(inputType).has(COMBO));
  }
  if (typeof outputType !== 'string' || typeof inputType !== 'string') return false;
  if (outputType.trim() === ANY || inputType.trim() === ANY) return true;
  const received = members(outputType);
  const accepted = members(inputType);
  if (received.has(ANY) || accepted.has(ANY)) return true;
  for (const name of received) if (accepted.has(name)) return true;
  return false;
}
