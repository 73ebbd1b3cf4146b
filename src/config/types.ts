/**
 * The validated, defaulted configuration (docs/config.md), as the rest of the code reads
 * it. HafcConfig is inferred from the declaration in schema.ts, where each key's default,
 * bounds and meaning are; docs/config.md is the readable reference. `load.ts` turns YAML into
 * this or throws a ConfigError naming the key and the value; nothing downstream re-validates.
 */
import type { Infer } from './declare.js';
import type { CONFIG } from './schema.js';

/** A hook command: an argv array (run without a shell) or a string (run with /bin/sh -c). */
export type Command = string | string[];

/** The output of the custom key health.check (forms.ts), whichever input form it came from. */
export type HealthCheckConfig =
  | { kind: 'http'; url: string; expectStatus: number[]; expectBodyMatches?: string }
  | { kind: 'tcp'; host: string; port: number }
  | { kind: 'command'; command: Command }
  /** Delegate to the service agent's own check (ServiceAgent.check). */
  | { kind: 'agent' };

/** The output of one entry of fencing.methods (forms.ts). */
export type FenceMethodConfig =
  | { kind: 'graceful' }
  | { kind: 'shell'; command: Command }
  | { kind: 'ssh'; user: string; port: number; identityFile?: string }
  | { kind: 'http'; url: string; method: 'POST' | 'PUT' | 'GET'; expectStatus: number[] };

export type HafcConfig = Infer<typeof CONFIG>;

export type ServiceConfig = HafcConfig['service'];
export type ShellServiceConfig = Extract<ServiceConfig, { agent: 'shell' }>;
export type HttpServiceConfig = Extract<ServiceConfig, { agent: 'http' }>;
export type RedisServiceConfig = Extract<ServiceConfig, { agent: 'redis' }>;
