export * from './allreduce.js';
export * from './codec.js';
export * from './frame.js';
export * from './group.js';
export * from './link.js';
export * from './node.js';
export * from './rendezvous.js';
