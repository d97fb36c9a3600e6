import { fileURLToPath } from 'node:url';

/** The package root: the parent of src/ (tsx) or dist/ (compiled), where config/ and views/ live. */
export const ROOT = fileURLToPath(new URL('..', import.meta.url));
