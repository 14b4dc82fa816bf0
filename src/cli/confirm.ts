/** The per-venv question: (y)es / (n)o / (a)ll remaining / (q)uit, one venv after another. */
import { InterruptedError } from '../errors.js';

type Answer = 'yes' | 'no' | 'all' | 'quit';

/**
 * Ask for each venv id in turn; returns the ids accepted. `quit` stops asking (what was accepted so
 * far is still deployed); Ctrl-C at a prompt is an InterruptedError and nothing is applied.
 */
export async function confirmVenvs(ids: readonly string[], verb = 'Deploy to'): Promise<Set<string>> {
  // Loaded only when someone is asked: it is a tenth of vdeploy's start-up time otherwise.
  const { expand } = await import('@inquirer/prompts');
  const accepted = new Set<string>();
  for (const [i, id] of ids.entries()) {
    let answer: Answer;
    try {
      answer = await expand<Answer>(
        {
          message: `${verb} ${id}?`,
          default: 'y',
          expanded: true,
          choices: [
            { key: 'y', name: 'yes', value: 'yes' },
            { key: 'n', name: 'no', value: 'no' },
            { key: 'a', name: 'all remaining', value: 'all' },
            { key: 'q', name: 'quit', value: 'quit' },
          ],
        },
        // The question is for the person at the terminal; stdout may be a pipe or JSON.
        { output: process.stderr },
      );
    } catch (err) {
      if (err instanceof Error && err.name === 'ExitPromptError') {
        throw new InterruptedError('interrupted at the confirmation prompt; nothing was deployed');
      }
      throw err;
    }
    if (answer === 'yes') accepted.add(id);
    if (answer === 'all') {
      for (const rest of ids.slice(i)) accepted.add(rest);
      break;
    }
    if (answer === 'quit') break;
  }
  return accepted;
}
