/**
 * Drives a real terminal: a detached tmux session of a given size running a command; keys by
 * tmux name (Down, Enter, Escape, Space, BSpace) one call per key or several in one call (a
 * burst), literal text, and the screen as text (capture-pane). Waits poll the screen, bounded
 * by the test timeout.
 */
import {execa} from 'execa';
import {mkdir, writeFile} from 'node:fs/promises';
import {dirname} from 'node:path';

export class Tmux {
  constructor(readonly name: string) {}

  static async start(name: string, argv: string[], opts: {cwd: string; env: Record<string, string>; columns?: number; rows?: number}): Promise<Tmux> {
    const env = Object.entries(opts.env).flatMap(([k, v]) => ['-e', `${k}=${v}`]);
    // tmux runs argv without a shell when given as separate words after the options.
    await execa('tmux', ['new-session', '-d', '-s', name, '-x', String(opts.columns ?? 80), '-y', String(opts.rows ?? 24), '-c', opts.cwd, ...env, ...argv]);
    await execa('tmux', ['set-option', '-t', name, 'remain-on-exit', 'on']);
    return new Tmux(name);
  }

  /** Sends tmux key names in one call: they reach the program as one burst. */
  async keys(...keys: string[]): Promise<void> {
    await execa('tmux', ['send-keys', '-t', this.name, ...keys]);
  }

  /** Sends text literally (one burst). */
  async text(s: string): Promise<void> {
    await execa('tmux', ['send-keys', '-t', this.name, '-l', s]);
  }

  async screen(): Promise<string> {
    return (await execa('tmux', ['capture-pane', '-p', '-t', this.name])).stdout;
  }

  async waitFor(what: string | RegExp, timeoutMs = 60_000): Promise<string> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const s = await this.screen();
      if (typeof what === 'string' ? s.includes(what) : what.test(s)) return s;
      if (Date.now() > until) throw new Error(`the screen never showed ${String(what)}:\n${s}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async dead(): Promise<boolean> {
    const out = await execa('tmux', ['list-panes', '-t', this.name, '-F', '#{pane_dead}'], {reject: false});
    return out.stdout.trim() === '1';
  }

  async save(path: string): Promise<string> {
    const s = await this.screen();
    await mkdir(dirname(path), {recursive: true});
    await writeFile(path, s + '\n');
    return s;
  }

  async kill(): Promise<void> {
    await execa('tmux', ['kill-session', '-t', this.name], {reject: false});
  }
}
