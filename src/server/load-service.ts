// Builds the core's CoreService for the app shells (Electron main, `npm start` web fallback); the CLI
// builds its own for `tapscope serve`.
import { createCoreService, type CoreServiceOptions } from '../service/index.js';
import type { ApiService } from './api-host.js';

/** The service, once the uploads no session names are removed (see SessionStore.removeOrphanUploads). */
export async function loadCoreService(opts: CoreServiceOptions = {}): Promise<ApiService & { close(): Promise<void> }> {
  const service = createCoreService(opts);
  service.store.removeOrphanUploads();
  return service;
}
