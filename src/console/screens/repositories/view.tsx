/**
 * Repositories: each with used/free space, dedup ratio and restore points; actions on the chosen
 * one (verify now, prune by the jobs' retention, garbage collection, the retention lock, remove
 * from the appliance), and add / import.
 */
import {Box, Text} from 'ink';
import {useState} from 'react';
import {ActionMessage, ErrorMessage} from '../../components/message/view.js';
import {Select} from '../../components/select/view.js';
import {bytes} from '../../format.js';
import {useApi, useNavigate} from '../../router/context.js';
import {useAction, useLoad} from '../../use-load.js';
import type {ScreenProps} from '../types.js';
import {RepositoryForm, S3RepositoryForm, SshRepositoryForm} from './repository-form.js';
import {RemoveConfirm} from '../remove-item.js';
import {RestorePoints} from './points.js';
import {RetentionLock} from './retention-lock.js';
import {repositoryLines} from './table.js';

export function Repositories(props: ScreenProps) {
  const api = useApi();
  const nav = useNavigate();
  const data = useLoad(() => api.status());
  const action = useAction();
  const [picked, setPicked] = useState<string | undefined>();
  const [forgetting, setForgetting] = useState(false);
  const [removing, setRemoving] = useState(false);
  const [locking, setLocking] = useState(false);
  if (data.error && !data.data) return <ErrorMessage error={data.error} />;
  if (!data.data) return <Text color="cyan">… loading</Text>;
  const repos = data.data.repositories;
  const lines = repositoryLines(repos, props.width - 2, true);
  const repo = repos.find((r) => r.id === picked);
  if (repo && forgetting) {
    return (
      <RestorePoints
        repository={repo.id}
        height={props.height}
        width={props.width}
        onDone={() => {
          setForgetting(false);
          data.reload();
        }}
      />
    );
  }
  if (repo && locking) return <RetentionLock repository={repo.id} name={repo.name} />;
  if (repo && removing) {
    return (
      <RemoveConfirm
        action={action}
        collection="repositories"
        id={repo.id}
        question={`Remove the repository ${repo.name} from the appliance?`}
        detail={`Its files stay in ${repo.path} (${repo.restorePoints ?? 0} restore points); add it again later to restore from it. Jobs that write to it fail until they get another repository.`}
        done="Removed from the appliance."
        onNo={() => setRemoving(false)}
        after={() => {
          setPicked(undefined);
          data.reload();
        }}
      />
    );
  }
  if (repo) {
    const items = [
      {value: 'verify', label: 'Verify now', hint: 're-read every chunk (health check)'},
      {value: 'prune', label: 'Prune', hint: "apply the jobs' retention"},
      {value: 'gc', label: 'Garbage collection', hint: 'free space of unreferenced chunks'},
      {value: 'restore', label: 'Restore from this repository'},
      {value: 'forget', label: 'Restore points', hint: 'browse; restore, protect or forget one'},
      {value: 'lock', label: 'Retention lock', hint: 'no point younger than N days can be removed'},
      {value: 'remove', label: 'Remove from the appliance', hint: 'files stay on disk; asks first'},
      {value: 'back', label: '← Back to the list'},
    ];
    return (
      <Box flexDirection="column">
        <Text bold>
          {repo.name} <Text dimColor>{repo.path}</Text>
        </Text>
        {repo.error ? <ErrorMessage error={{message: repo.error}} /> : null}
        <Text>
          Used {bytes(repo.usedBytes)} · free {bytes(repo.freeBytes)} of {bytes(repo.totalBytes)} · {repo.restorePoints ?? 0} restore points
          {repo.encrypted ? ' · encrypted' : ''}
        </Text>
        <Select
          key={`actions:${repo.id}`}
          items={items}
          onChoose={(item) => {
            const id = repo.id;
            if (item.value === 'verify') void action.run('Verifying (this reads every chunk)', () => api.verify(id), (v) => (v.ok ? `Verify found no damage (${v.vms.length} VMs).` : `Verify found ${v.problems} problem(s): the next backup of the damaged VMs will be a full one.`));
            else if (item.value === 'prune') void action.run('Pruning', () => api.prune(id), (v) => `Pruned${v.removed !== undefined ? ` ${v.removed} restore point(s)` : ''}.`);
            else if (item.value === 'gc') void action.run('Garbage collection', () => api.gc(id), () => 'Garbage collection finished.');
            else if (item.value === 'restore') nav({type: 'push', route: {name: 'restore', params: {repository: id}}});
            else if (item.value === 'forget') setForgetting(true);
            else if (item.value === 'lock') setLocking(true);
            else if (item.value === 'remove') setRemoving(true);
            else setPicked(undefined);
          }}
        />
        <ActionMessage state={action.state} />
      </Box>
    );
  }
  return (
    <Box flexDirection="column">
      <Text dimColor>{'  ' + lines[0]}</Text>
      <Select
        items={[
          ...repos.map((r, i) => ({value: r.id, label: lines[i + 1]!})),
          {value: '+add', label: '+ Add a repository'},
          {value: '+import', label: '+ Import an existing repository'},
          {value: '+s3', label: '+ Add an S3 bucket', hint: 'object storage, new or existing'},
          {value: '+ssh', label: '+ Add one on another appliance', hint: 'over SSH, new or existing'},
        ]}
        visible={props.height - 3}
        onChoose={(item) => {
          if (item.value === '+add') nav({type: 'push', route: {name: 'repository-add'}});
          else if (item.value === '+import') nav({type: 'push', route: {name: 'repository-add', params: {import: '1'}}});
          else if (item.value === '+s3') nav({type: 'push', route: {name: 'repository-add', params: {s3: '1'}}});
          else if (item.value === '+ssh') nav({type: 'push', route: {name: 'repository-add', params: {ssh: '1'}}});
          else setPicked(item.value);
        }}
      />
      <ActionMessage state={action.state} />
    </Box>
  );
}

export function RepositoryAdd(props: ScreenProps) {
  const nav = useNavigate();
  if (props.params.s3 === '1') return <S3RepositoryForm onDone={() => nav({type: 'pop'})} />;
  if (props.params.ssh === '1') return <SshRepositoryForm onDone={() => nav({type: 'pop'})} />;
  return <RepositoryForm importing={props.params.import === '1'} onDone={() => nav({type: 'pop'})} />;
}
