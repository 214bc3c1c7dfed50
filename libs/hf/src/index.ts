export * from './export.js';
export * from './hf-config.js';
export * from './import.js';
export * from './tensor-names.js';
export * from './tokenizer-files.js';
