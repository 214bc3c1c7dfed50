#!/usr/bin/env node
// Runs the TypeScript sources directly; no build step stands between a checkout and the CLI.
import { register } from 'tsx/esm/api';

register();
await import('../apps/cli/src/main.ts');
