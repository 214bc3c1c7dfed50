export * from './checkpoint.js';
export * from './files.js';
export * from './safetensors.js';
