// Finds the core's CoreService for the app shells (Electron main, `npm start` web fallback). The CLI
// builds its own; this keeps the shells free of the core's construction details.
import { TapscopeError } from '../errors.js';
import type { ApiService } from './api-host.js';

type ServiceModule = Record<string, unknown>;

export async function loadCoreService(opts: Record<string, unknown> = {}): Promise<ApiService> {
  // why: resolved at run time so the shells build (and their tests run) while src/service/ evolves.
  const spec = '../service/index.js';
  let mod: ServiceModule;
  try {
    mod = (await import(spec)) as ServiceModule;
  } catch (e) {
    throw new TapscopeError('E_INTERNAL', `The core service is not built (${(e as Error).message}); run \`npm run build:core\`.`);
  }
  const factory = mod.createCoreService;
  if (typeof factory === 'function') return (await (factory as (o: unknown) => unknown)(opts)) as ApiService;
  const Ctor = mod.CoreService;
  if (typeof Ctor === 'function') {
    const svc = new (Ctor as new (o: unknown) => ApiService & { init?: () => Promise<void> })(opts);
    if (typeof svc.init === 'function') await svc.init();
    return svc;
  }
  throw new TapscopeError('E_INTERNAL', 'src/service/index.js exports neither createCoreService nor CoreService.');
}
