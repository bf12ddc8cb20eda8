// The CLI commands' bodies (loaded lazily so that --help and --version start instantly).
import { TapscopeError } from '../errors.js';
import type { Command } from './args.js';

export async function runCommand(command: Exclude<Command, { cmd: 'help' | 'version' }>): Promise<number> {
  throw new TapscopeError('E_INTERNAL', `${command.cmd} is not available yet`);
}
