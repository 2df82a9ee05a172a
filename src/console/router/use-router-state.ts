/**
 * The screen stack as a pure reducer. Esc pops (never below the home screen); `reset` goes
 * home; `replace` swaps the top (a wizard that finishes into its result screen).
 */
export interface Route {
  name: string;
  params?: Record<string, string | undefined>;
}

export interface RouterState {
  stack: Route[];
  /** The help overlay is open. */
  help: boolean;
  quit: boolean;
}

export type RouterAction =
  | {type: 'push'; route: Route}
  | {type: 'pop'}
  | {type: 'replace'; route: Route}
  | {type: 'reset'; route?: Route}
  | {type: 'help'; open?: boolean}
  | {type: 'quit'};

export const initRouter = (home: Route, first?: Route): RouterState => ({stack: first ? [home, first] : [home], help: false, quit: false});

export function routerReducer(s: RouterState, a: RouterAction): RouterState {
  switch (a.type) {
    case 'push':
      return {...s, help: false, stack: [...s.stack, a.route]};
    case 'pop':
      // Esc closes the help first, then the screen; the home screen stays.
      if (s.help) return {...s, help: false};
      return s.stack.length > 1 ? {...s, stack: s.stack.slice(0, -1)} : s;
    case 'replace':
      return {...s, help: false, stack: [...s.stack.slice(0, -1), a.route]};
    case 'reset':
      return {...s, help: false, stack: a.route ? [s.stack[0]!, a.route] : [s.stack[0]!]};
    case 'help':
      return {...s, help: a.open ?? !s.help};
    case 'quit':
      return {...s, quit: true};
  }
}

export const top = (s: RouterState): Route => s.stack[s.stack.length - 1]!;
