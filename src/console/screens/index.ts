/** Every screen of the console by route name, with its title and its help text. */
import {Dashboard} from './dashboard/view.js';
import {JobScreen} from './job/view.js';
import {Menu} from './menu/view.js';
import type {ScreenDef} from './types.js';

export const SCREENS: Record<string, ScreenDef> = {
  dashboard: {
    title: 'Dashboard',
    help: [
      'The home screen. At the top: what needs attention (failed VMs, damaged or full repositories).',
      'Jobs with their last result, last run and next run: ↑↓ pick one, Enter opens it (run, stop, retry, edit, history).',
      'Running sessions show a progress bar, the rate and the time left.',
      'Keys: n new job · r restore · m menu (repositories, connections, workers, email, appliance) · g refresh.',
    ],
    keys: 'n new job · m menu',
    Component: Dashboard,
  },
  menu: {title: 'Menu', help: ['Every screen of the console. ↑↓ then Enter opens one.'], Component: Menu},
  job: {
    title: 'Job',
    help: ['The job and what you can do with it: run now, stop, retry failed VMs, edit (the wizard), delete.', 'Below the actions: its past sessions; Enter opens one.'],
    Component: JobScreen,
  },
};
