export * from './artifacts.js';
export * from './child-task.js';
export * from './queues.js';
export * from './redis.js';
export * from './run-spec.js';
export * from './runs.js';
export * from './scheduler.js';
export * from './service.js';
