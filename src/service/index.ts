// The core service: what the app shells, the web server and the CLI call.
export { CoreService, createCoreService, type CoreServiceOptions } from './core-service.js';
