/**
 * Renders the console (or one component) into fake streams the size of a real terminal
 * (ink-testing-library's stdout is fixed at 100 columns), with every render, key press and
 * unmount wrapped in act() (ecosystem P2).
 */
import {EventEmitter} from 'node:events';
import {render as inkRender, type Instance} from 'ink';
import {act, type ReactElement} from 'react';
import {App} from '../../src/console/app/app.js';
import type {ConsoleApi} from '../../src/console/api.js';
import type {Route} from '../../src/console/router/use-router-state.js';

class Stdout extends EventEmitter {
  frames: string[] = [];
  isTTY = true;
  constructor(
    public columns: number,
    public rows: number,
  ) {
    super();
  }
  write = (frame: string) => {
    this.frames.push(frame);
    return true;
  };
  lastFrame = () => this.frames[this.frames.length - 1] ?? '';
}

class Stdin extends EventEmitter {
  isTTY = true;
  data: string | null = null;
  write = (data: string) => {
    this.data = data;
    this.emit('readable');
    this.emit('data', data);
  };
  setEncoding() {}
  setRawMode() {}
  resume() {}
  pause() {}
  ref() {}
  unref() {}
  read = () => {
    const d = this.data;
    this.data = null;
    return d;
  };
}

export const KEY = {down: '\u001B[B', up: '\u001B[A', left: '\u001B[D', right: '\u001B[C', enter: '\r', esc: '\u001B', tab: '\t', backspace: '\u007F'} as const;

export interface Rendered {
  frame: () => string;
  press: (keys: string) => Promise<void>;
  type: (text: string) => Promise<void>;
  /** Waits (inside act) until the frame matches, for answers from the fake API. */
  waitFor: (re: RegExp | string, timeoutMs?: number) => Promise<string>;
  resize: (columns: number, rows: number) => Promise<void>;
  unmount: () => Promise<void>;
  stdout: Stdout;
  exited: () => boolean;
  /** Runs `fn` (an event from the fake daemon) inside act(). */
  act: (fn: () => void) => Promise<void>;
}

export async function renderTree(tree: ReactElement, size = {columns: 80, rows: 24}): Promise<Rendered> {
  const stdout = new Stdout(size.columns, size.rows);
  const stdin = new Stdin();
  let instance!: Instance;
  let exited = false;
  await act(async () => {
    instance = inkRender(tree, {stdout: stdout as never, stderr: new Stdout(80, 24) as never, stdin: stdin as never, debug: true, exitOnCtrlC: false, patchConsole: false});
    void instance.waitUntilExit().then(() => (exited = true));
  });
  const frame = () => stdout.lastFrame();
  const press = (keys: string) =>
    act(async () => {
      stdin.write(keys);
    });
  return {
    frame,
    press,
    // One key per write: typed text arrives char by char like a slow link.
    type: async (text: string) => {
      for (const ch of text) await press(ch);
    },
    waitFor: async (re, timeoutMs = 5000) => {
      const until = Date.now() + timeoutMs;
      for (;;) {
        await act(async () => {
          await new Promise((r) => setTimeout(r, 10));
        });
        const f = frame();
        if (typeof re === 'string' ? f.includes(re) : re.test(f)) return f;
        if (Date.now() > until) throw new Error(`frame never showed ${String(re)}; last frame:\n${f}`);
      }
    },
    resize: (columns, rows) =>
      act(async () => {
        stdout.columns = columns;
        stdout.rows = rows;
        stdout.emit('resize');
      }),
    unmount: () => act(async () => instance.unmount()),
    stdout,
    exited: () => exited,
    act: (fn) =>
      act(async () => {
        fn();
      }),
  };
}

export function renderApp(api: ConsoleApi, first?: Route, size = {columns: 80, rows: 24}): Promise<Rendered> {
  return renderTree(<App api={api} first={first} />, size);
}

/** Every line of the frame fits the width (80×24 check). */
export function overlong(frame: string, width = 80): string[] {
  return frame.split('\n').filter((l) => [...l].length > width);
}
