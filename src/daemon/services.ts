/**
 * What the control API server (api.ts) may reach: the services the daemon exposes, each as
 * narrow as the routes need, never the Daemon that wires them (daemon.ts). A route that needs
 * something new adds it here, so what the API can touch is written in one place.
 */
import type {ApplianceSshKeyReply, DemoLabResult} from '../api/contract.js';
import type {ConfigStore} from '../config/store.js';
import type {ConfigurationService} from './configuration.js';
import type {EventHub} from './event-hub.js';
import type {DaemonLog} from './log.js';
import type {Maintenance} from './maintenance.js';
import type {Resources} from './resources.js';
import type {InstantRecoveries} from './instant.js';
import type {FileBrowsers} from './file-browser.js';
import type {Restores} from './restores.js';
import type {SessionManager} from './sessions.js';
import type {StatusService} from './status.js';

export interface ApiServices {
  /** Where the audit log is kept. */
  readonly stateDir: string;
  readonly log: DaemonLog;
  readonly events: Pick<EventHub, 'subscribe'>;
  readonly configuration: ConfigurationService;
  /** Console users and their roles (who may call what). */
  readonly users: Pick<ConfigStore, 'data' | 'putUser' | 'removeUser'>;
  readonly status: StatusService;
  readonly sessions: Pick<SessionManager, 'start' | 'stop' | 'get' | 'lastFailedVms'>;
  readonly restores: Pick<Restores, 'restorePoints' | 'plan' | 'start' | 'stop'>;
  readonly instant: Pick<InstantRecoveries, 'list' | 'start' | 'finish' | 'stop'>;
  readonly files: Pick<FileBrowsers, 'open' | 'ls' | 'get' | 'close'>;
  readonly maintenance: Pick<Maintenance, 'prune' | 'healthCheck' | 'gc'>;
  readonly resources: Pick<Resources, 'inventory' | 'repository'>;
  readonly sshKey: ApplianceSshKeyReply;
  demoLab(input: unknown): Promise<DemoLabResult>;
}
