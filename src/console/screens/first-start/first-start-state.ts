/**
 * The first-start walk-through as a pure reducer, in the order things depend on each other:
 * the offer of a demo lab, a repository, a connection, workers, email, then the first backup
 * job. Each step can be done now or skipped (and done later from the menu); what was done is
 * remembered for the last page. A demo lab brings its own repository and connections, so
 * finishing it ('demo-done') marks those two steps done and goes on with the workers.
 */
export const SETUP_STEPS = ['demo', 'repository', 'connection', 'workers', 'email', 'job'] as const;
export type SetupStep = (typeof SETUP_STEPS)[number];

export interface SetupState {
  step: number;
  /** Showing the step's form (true) or asking whether to do it now (false). */
  form: boolean;
  outcome: Partial<Record<SetupStep, 'done' | 'skipped'>>;
  left: boolean;
}

export type SetupAction = {type: 'now'} | {type: 'skip'} | {type: 'done'} | {type: 'demo-done'} | {type: 'back'};

export const initSetup = (): SetupState => ({step: 0, form: false, outcome: {}, left: false});

export function setupReducer(s: SetupState, a: SetupAction): SetupState {
  const name = SETUP_STEPS[s.step];
  switch (a.type) {
    case 'now':
      return name ? {...s, form: true} : s;
    case 'skip':
      return name ? {...s, form: false, step: s.step + 1, outcome: {...s.outcome, [name]: 'skipped'}} : s;
    case 'done':
      return name ? {...s, form: false, step: s.step + 1, outcome: {...s.outcome, [name]: 'done'}} : s;
    case 'demo-done':
      return name === 'demo'
        ? {...s, form: false, step: SETUP_STEPS.indexOf('workers'), outcome: {...s.outcome, demo: 'done', repository: 'done', connection: 'done'}}
        : s;
    case 'back':
      if (s.form) return {...s, form: false};
      return s.step === 0 ? {...s, left: true} : {...s, step: s.step - 1};
  }
}
