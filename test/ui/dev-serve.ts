// Dev-only: serves the renderer in web mode against the synthetic DevService (npx tsx test/ui/dev-serve.ts).
import { startWebServer } from '../../src/server/index.js';
import { DevService } from './dev-service.js';

const s = await startWebServer({ service: new DevService(Number(process.env.FLOWS ?? 5000)), port: Number(process.env.PORT ?? 0) });
console.log(s.url);
