/** Every CLI subcommand, in the order `vmbackup --help` lists them. */
import {backup} from './backup.js';
import {check} from './check.js';
import {metrics} from './metrics.js';
import {configCommands} from './config-commands.js';
import {configExport, configImport} from './config-io.js';
import {consoleCommand} from './console.js';
import {demoLab} from './demo-lab.js';
import {completionCommand, manCommand} from './docs-commands.js';
import type {Command} from './command.js';
import {jobList} from './job-list.js';
import {jobStart} from './job-start.js';
import {jobStop} from './job-stop.js';
import {repoCreate} from './repo-create.js';
import {repoForget} from './repo-forget.js';
import {repoGc} from './repo-gc.js';
import {repoCopy} from './repo-copy.js';
import {repoServe} from './repo-serve.js';
import {repoLock} from './repo-lock.js';
import {workerUninstall} from './worker-uninstall.js';
import {repoInfo} from './repo-info.js';
import {repoKeyChange, repoKeyExport} from './repo-key.js';
import {passphraseHelp} from './passphrase.js';
import {repoList} from './repo-list.js';
import {repoPrune} from './repo-prune.js';
import {repoProtect, repoUnprotect} from './repo-protect.js';
import {repoVerify} from './repo-verify.js';
import {sessionList} from './session-list.js';
import {sessionShow} from './session-show.js';
import {status} from './status.js';
import {restore} from './restore.js';
import {exportCommand} from './export.js';
import {instantCommands} from './instant.js';
import {filesCommands} from './files.js';
import {ovirtCa} from './ovirt-ca.js';
import {sshHostkey} from './ssh-hostkey.js';
import {audit, userAdd, userList, userRemove} from './users.js';

/** Every command that opens a repository takes --passphrase-file; its help says so when it does not yet. */
function withPassphraseHelp(c: Command): Command {
  if (!('passphrase-file' in c.options) || /^\s*--passphrase-file/m.test(c.help ?? '')) return c;
  return {...c, help: `${c.help ? `${c.help}\n\n` : ''}Encrypted repositories:\n${passphraseHelp}`};
}

const all: Command[] = [
  backup,
  restore,
  exportCommand,
  ...instantCommands,
  ...filesCommands,
  ovirtCa,
  sshHostkey,
  consoleCommand,
  demoLab,
  repoCreate, repoInfo, repoList, repoVerify, repoPrune, repoGc, repoCopy, repoServe, repoKeyExport, repoKeyChange, repoLock, repoProtect, repoUnprotect, repoForget,
  status, check, metrics, jobList, jobStart, jobStop, sessionList, sessionShow,
  ...configCommands,
  configExport, configImport,
  userAdd, userRemove, userList, audit,
  workerUninstall,
  manCommand, completionCommand];

export const commands: Command[] = all.map(withPassphraseHelp);
