// Questions from targets (unknown host key, password, passphrase) waiting for the person at the UI.
import type { Prompt } from '../../../../src/targets/target.js';
import { getApi } from '../api.js';
import { ui } from './ui.svelte.js';

export interface PendingPrompt {
  promptId: string;
  prompt: Prompt;
}

export class PromptsState {
  queue = $state<PendingPrompt[]>([]);
  current = $derived(this.queue[0] ?? null);

  push(p: PendingPrompt): void {
    if (!this.queue.some((q) => q.promptId === p.promptId)) this.queue = [...this.queue, p];
  }

  async answer(promptId: string, answer: string | boolean | null): Promise<void> {
    this.queue = this.queue.filter((q) => q.promptId !== promptId);
    try {
      await getApi().answerPrompt({ promptId, answer });
    } catch (e) {
      ui.error(e);
    }
  }
}

export const prompts = new PromptsState();
