export * from './adamw.js';
export * from './budget.js';
export * from './evaluate.js';
export * from './run.js';
export * from './schedule.js';
export * from './smoke.js';
export * from './throughput.js';
export * from './trainer.js';
