/**
 * One job: its settings in words, the actions (run now, stop, retry failed VMs, edit, enable or
 * disable, delete)
 * and its past sessions (Enter opens one). Starting a run opens its session view.
 */
import {Box, Text} from 'ink';
import {useState} from 'react';
import type {JobConfig} from '../../../config/schema.js';
import {describeSchedule} from '../../../config/schedule.js';
import {savedJob} from '../../../api/jobs.js';
import type {SessionSummary} from '../../api.js';
import {ActionMessage, ErrorMessage} from '../../components/message/view.js';
import {Select} from '../../components/select/view.js';
import {SYMBOL, toneOf} from '../../components/status/status.js';
import {StatusLine} from '../../components/status/view.js';
import {duration, when} from '../../format.js';
import {useEvents} from '../../live/use-events.js';
import {useApi, useNavigate} from '../../router/context.js';
import {useAction, useLoad} from '../../use-load.js';
import type {ScreenProps} from '../types.js';

export function JobScreen(props: ScreenProps) {
  const api = useApi();
  const nav = useNavigate();
  const id = props.params.id ?? '';
  const action = useAction();
  const [confirmDelete, setConfirmDelete] = useState(false);
  const data = useLoad(async () => {
    const [job, sessions] = await Promise.all([api.get<JobConfig>('jobs', id), api.sessions({job: id, limit: 50})]);
    return {job, sessions};
  }, [id]);
  useEvents((e) => {
    if (e.type === 'session' && e.session.jobId === id) data.reload();
  });
  if (data.error && !data.data) return <ErrorMessage error={data.error} />;
  if (!data.data) return <Text color="cyan">… loading</Text>;
  const {job, sessions} = data.data;
  const running = sessions.find((s) => s.state === 'running');
  const open = (s: SessionSummary) => nav({type: 'push', route: {name: 'session', params: {id: s.id}}});
  const items = [
    {value: 'run', label: 'Run the job now'},
    {value: 'stop', label: 'Stop the running session', hint: running ? '' : '(not running)'},
    {value: 'retry', label: 'Retry failed VMs'},
    {value: 'edit', label: 'Edit the job'},
    {value: 'toggle', label: job.enabled ? 'Disable the job' : 'Enable the job', hint: job.enabled ? 'no scheduled runs; Run now still works' : 'runs on its schedule again'},
    {value: confirmDelete ? 'delete-yes' : 'delete', label: confirmDelete ? 'Delete: press Enter again to confirm' : 'Delete the job'},
    ...sessions.map((s) => ({value: `s:${s.id}`, label: `${SYMBOL[toneOf(s.state)]} ${when(s.startedAt)} ${s.state}`, hint: `${s.vms.length} VMs · ${duration(s.totals.durationMs)} · ${s.trigger}`})),
  ];
  const choose = async (value: string) => {
    if (value !== 'delete') setConfirmDelete(false);
    if (value === 'run') {
      const r = await action.run('Starting the job', () => api.startJob(id));
      if (r.ok) nav({type: 'push', route: {name: 'session', params: {id: r.value.id}}});
    } else if (value === 'stop') await action.run('Stopping', () => api.stopJob(id), () => 'Stop requested.');
    else if (value === 'retry') {
      const r = await action.run('Retrying failed VMs', () => api.retryFailed(id));
      if (r.ok) nav({type: 'push', route: {name: 'session', params: {id: r.value.id}}});
    } else if (value === 'edit') nav({type: 'push', route: {name: 'repository' in job.source ? 'copy-job' : 'job-wizard', params: {id}}});
    else if (value === 'toggle') {
      const r = await action.run(job.enabled ? 'Disabling' : 'Enabling', () => api.update('jobs', id, {...savedJob(job), enabled: !job.enabled}), () => (job.enabled ? 'Disabled: it runs only when started by hand.' : 'Enabled: it runs on its schedule.'));
      if (r.ok) data.reload();
    }
    else if (value === 'delete') setConfirmDelete(true);
    else if (value === 'delete-yes') {
      const r = await action.run('Deleting', () => api.remove('jobs', id), () => 'Deleted.');
      if (r.ok) nav({type: 'pop'});
    } else if (value.startsWith('s:')) {
      const s = sessions.find((x) => x.id === value.slice(2));
      if (s) open(s);
    }
  };
  const src = job.source;
  const picks =
    'repository' in src
      ? [`copies of ${src.vms.length ? src.vms.join(', ') : 'every VM'} from repository ${src.repository}${src.verify ? ', read back and checked' : ''}`]
      : [...src.vms.map((v) => v.name ?? v.id), ...src.clusters.map((c) => `cluster ${c}`), ...src.hosts.map((h) => `host ${h}`), ...src.tags.map((t) => `tag ${t}`)];
  return (
    <Box flexDirection="column">
      <Text bold wrap="truncate-end">
        {job.name}
        {job.enabled ? '' : ' (disabled)'}
        {job.description ? <Text dimColor> – {job.description}</Text> : null}
      </Text>
      <Text wrap="truncate-end">VMs: {picks.join(', ') || '–'}</Text>
      <Text wrap="truncate-end">
        Repository: {job.repository} · Schedule: {describeSchedule(job.schedule)}
      </Text>
      {props.params.notice && !action.state.busy && !action.state.ok && !action.state.error ? <StatusLine tone="ok">{props.params.notice}</StatusLine> : null}
      <ActionMessage state={action.state} />
      <Text dimColor>Actions, then past sessions:</Text>
      <Select items={items} visible={Math.max(3, props.height - 7)} onChoose={(item) => void choose(item.value)} />
    </Box>
  );
}
