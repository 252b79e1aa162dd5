export { referenceBackend, ReferenceStorage, data, floats, ints } from './backend.js';
