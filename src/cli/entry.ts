#!/usr/bin/env node
/**
 * The smallest possible front door for the `hafc` binary: it takes SIGUSR1 away from Node's
 * inspector (inspector-guard.ts) BEFORE the rest of the CLI is loaded. A static import would not
 * do: an ES module graph is loaded in full before any of it runs, and until the guard runs, a
 * SIGUSR1 opens a debugger port. Measured on this machine: the guard is in place ~5-15 ms after
 * Node's start-up this way, ~70-120 ms when it is reached through main.js's static imports.
 */
import './inspector-guard.js';

await import('./main.js');
