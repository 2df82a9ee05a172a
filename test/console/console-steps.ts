/**
 * Walks through parts of the console that the tmux tests share: the first-start steps around
 * the connection, and the job wizard's steps after the VM step with their defaults.
 */
import type {Tmux} from './tmux.js';

/** First start, steps 1–2: no demo lab, then a repository with this name and directory (encrypted with `passphrase`, if given). */
export async function firstStartRepository(t: Tmux, name: string, directory: string, passphrase?: string): Promise<void> {
  await t.waitFor('Set-up 1/6: Demo lab');
  await t.keys('Down', 'Enter');
  await t.waitFor('Set-up 2/6: Backup repository');
  await t.keys('Enter');
  await t.waitFor('Directory');
  await t.text(name);
  await t.keys('Enter');
  await t.text(directory);
  await t.keys('Enter');
  // Encrypt (a toggle: → makes it yes), the passphrase and its repetition, typed unseen.
  if (passphrase !== undefined) {
    await t.keys('Right', 'Enter');
    await t.text(passphrase);
    await t.keys('Enter');
    await t.text(passphrase);
    await t.keys('Enter');
  } else {
    await t.keys('Enter', 'Enter', 'Enter');
  }
  await t.waitFor('Set-up 3/6');
}

/** First start, steps 4–6: no workers, no e-mail, then into the job wizard. */
export async function firstStartSkipToWizard(t: Tmux): Promise<void> {
  await t.waitFor('Set-up 4/6: Workers', 90_000);
  await t.keys('Down', 'Enter');
  await t.waitFor('Set-up 5/6: Email');
  await t.keys('Down');
  await t.keys('Enter');
  await t.waitFor('Set-up 6/6');
  await t.keys('Enter');
}

/** The job wizard from step 3 with every default (Enter through each field) to the summary. */
export async function wizardDefaultsToSummary(t: Tmux): Promise<string> {
  await t.waitFor('step 3/7');
  await t.keys(...Array(7).fill('Enter'));
  await t.waitFor('step 4/7');
  await t.keys(...Array(5).fill('Enter'));
  await t.waitFor('step 5/7');
  await t.keys(...Array(5).fill('Enter'));
  await t.waitFor('step 6/7');
  await t.keys(...Array(4).fill('Enter'));
  return t.waitFor('Summary');
}
