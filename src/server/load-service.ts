// Builds the core's CoreService for every shell that serves the app: Electron main, `npm start`'s web fallback and
// `tapscope serve`, each through this one start-up (the uploads sweep now; any later start-up step here too).
import { createCoreService, type CoreService, type CoreServiceOptions } from '../service/index.js';

/** The service, once the uploads no session names are removed (see SessionStore.removeOrphanUploads). */
export async function loadCoreService(opts: CoreServiceOptions = {}): Promise<CoreService> {
  const service = createCoreService(opts);
  service.store.removeOrphanUploads();
  return service;
}
