/** Every screen of the console by route name, with its title and its help text. */
import {Appliance} from './appliance/view.js';
import {Audit} from './audit/view.js';
import {ConnectionAddScreen, Connections} from './connections/view.js';
import {Dashboard} from './dashboard/view.js';
import {Email} from './email/view.js';
import {FirstStart} from './first-start/view.js';
import {InstantRecoveries} from './instant/view.js';
import {FileBrowser} from './files/view.js';
import {JobScreen} from './job/view.js';
import {JobWizard} from './job-wizard/view.js';
import {CopyJobScreen} from './copy-job/view.js';
import {Jobs} from './jobs/view.js';
import {Menu} from './menu/view.js';
import {Repositories, RepositoryAdd} from './repositories/view.js';
import {RestoreWizard} from './restore/view.js';
import {Session} from './session/view.js';
import {Sessions} from './sessions/view.js';
import type {ScreenDef} from './types.js';
import {WebhookAdd, Webhooks} from './webhooks/view.js';
import {WorkerAdd, Workers} from './workers/view.js';

const FORM_HELP = 'Type into the focused field · ↑↓ or Tab move · ←→ or Space change a choice · Enter next field, on the last one: save.';

export const SCREENS: Record<string, ScreenDef> = {
  dashboard: {
    title: 'Dashboard',
    help: [
      'The home screen. At the top: what needs attention (failed VMs, damaged or full repositories).',
      'Jobs with their last result, last run and next run: ↑↓ pick one, Enter opens it (run, stop, retry, edit, history).',
      'Running sessions show a progress bar, the rate and the time left; VMs running from a backup (instant recovery) are listed too.',
      'Keys: n new job · r restore · i VMs running from a backup (finish, stop) · m menu (repositories, connections, workers, email, appliance) · g refresh.',
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
  'copy-job': {
    title: 'Copy job',
    help: [
      'A copy job keeps a second copy of the restore points of one repository in another (3-2-1): those its retention keeps, only the chunks the target lacks.',
      'Check copies: each copy is read back from the target and every chunk checked; a damaged copy is removed so the next run copies it again.',
      'An encrypted target (a repository with a passphrase) gets the copies encrypted.',
      FORM_HELP,
    ],
    Component: CopyJobScreen,
  },
  'job-wizard': {
    title: 'Job wizard',
    help: [
      'Steps: name → VMs → repository and retention → schedule → guest processing → notifications → summary. Esc goes one step back.',
      'VMs: ↑↓ move · Space picks a cluster, VM or tag · x excludes a VM a cluster/tag brings in · d shows its disks to choose · / searches by name · c switches connection · Enter next.',
      '⚠ marks disks whose changes cannot be tracked (RAW): every backup reads them in full.',
      FORM_HELP,
    ],
    Component: JobWizard,
  },
  restore: {
    title: 'Restore',
    help: [
      'Pick a VM (also one that no longer exists) → a restore point (date, type, size) → where to: the original place, a new VM (name, host, cluster, storage domain), chosen disks to an existing VM or to image files → summary → live progress.',
      '"Browse and copy files" opens the file browser on the restore point (file-level restore).',
      'Or "Start it from the backup now" (libvirt VMs): the VM runs within seconds, its disks read from the repository; the dashboard (i) then finishes it (moves it to storage while it runs) or stops it.',
      'Esc goes one step back; during the restore it leaves the screen and the restore goes on.',
    ],
    Component: RestoreWizard,
  },
  instant: {
    title: 'Running from backup',
    help: [
      'VMs started from a restore point (instant recovery): they run while their disks are read from the repository; what they write goes to overlays on the host.',
      'Enter on one: Finish moves it to storage while it keeps running (then it is an ordinary VM, defined on its host); Stop discards it with what it wrote (asks first).',
      'A move shows its progress, rate and time left. Start one from Restore → a restore point → "Start it from the backup now".',
    ],
    Component: InstantRecoveries,
  },
  files: {
    title: 'Files',
    help: [
      'The files of one restore point, read where they are (libguestfs on the daemon; nothing is restored first). It takes 15–20 s to start without KVM.',
      '↑↓ move · Enter opens a directory (.. goes up) · Space marks an entry · c copies the marked entries (or the one under the cursor) to a directory on this appliance, with owners, modes and times, never over existing files.',
      'Backspace or Esc goes up; Esc at / leaves and closes the browser (an idle one closes after 10 minutes).',
    ],
    Component: FileBrowser,
  },
  'first-start': {
    title: 'Set-up',
    help: ['The first-start walk-through: demo lab (optional) → repository → platform connection → workers → email → first backup job.', 'Each step: do it now or skip it (everything is also in the menu). Esc goes one step back.', FORM_HELP],
    Component: FirstStart,
  },
  jobs: {title: 'Backup jobs', help: ['Every backup job with its schedule. Enter opens a job; the last item creates a new one.'], Component: Jobs},
  sessions: {title: 'Sessions', help: ['Past and running sessions of every job, newest first. Enter opens one.'], Component: Sessions},
  session: {
    title: 'Session',
    help: ['A session live: each VM with its state, each running disk with progress, rate and time left; the log as it grows (⚠ warnings, ✖ errors).', 'Keys: s stop the session · f retry the failed VMs · h the job and its past sessions · l the whole log, filtered by level (e) or VM (v).'],
    keys: 's stop · f retry · l log',
    Component: Session,
  },
  repositories: {
    title: 'Repositories',
    help: ['Every repository with used and free space, dedup ratio and restore points.', 'Enter on one: verify now, prune, garbage collection, restore, its restore points (restore from one, protect, forget), remove. The last items add a repository or import an existing one.'],
    Component: Repositories,
  },
  'repository-add': {title: 'Add repository', help: [FORM_HELP, 'A directory that already holds a repository is imported.'], Component: RepositoryAdd},
  connections: {title: 'Connections', help: ['oVirt engines and VM Essentials hosts. Enter on one: test it, refresh its inventory, edit it (tested before it is saved), remove it (asks first).'], Component: Connections},
  'connection-add': {
    title: 'Add connection',
    help: [FORM_HELP, "oVirt: the engine's CA fingerprint is shown to confirm. VM Essentials: each host's SSH key is shown to confirm.", 'The connection is tested before it is saved.'],
    Component: ConnectionAddScreen,
  },
  workers: {title: 'Workers', help: ['Where disk tasks run and how many at once. A worker placed on a KVM host reached over SSH, or on its cluster, reads the disks of VMs there on the host itself and sends only new, compressed chunks (it is copied there the first time). Enter on a worker: change its slots, or remove it (asks first).'], Component: Workers},
  'worker-add': {title: 'Add worker', help: [FORM_HELP], Component: WorkerAdd},
  webhooks: {
    title: 'Webhooks',
    help: [
      'Where session reports are posted besides email: Slack, Microsoft Teams, Mattermost, or JSON to your own endpoint, with each one\'s delivery state.',
      'Enter on one: send a test report (the answer is shown), turn it off or on, remove it (asks first). Jobs pick webhooks in the job wizard\'s notifications step.',
    ],
    Component: Webhooks,
  },
  'webhook-add': {title: 'Add webhook', help: [FORM_HELP, 'The URL is kept secret: it is shown as •••• afterwards and never logged.'], Component: WebhookAdd},
  email: {title: 'Email', help: [FORM_HELP, 'After saving, send a test message to see that mail leaves the appliance.'], Component: Email},
  appliance: {title: 'Appliance', help: ["The appliance's health: daemon version, running since, memory, free space of the state directory and of each repository, each repository's last health check, and the daemon's log."], Component: Appliance},
  audit: {
    title: 'Audit log',
    help: ['Every change asked of the appliance, newest last: when, who (user and uid), their role, what, and the outcome (⚠ refused, ✖ failed).', 'Your own account and role are on the first line.'],
    Component: Audit,
  },
};
