/**
 * The New Backup Job wizard (also "edit job": the same steps, filled). One step at a time with
 * its title and position; Esc goes one step back, and on the first step leaves. The summary
 * saves the job through the daemon (which validates it again) and can run it at once.
 */
import {Box, Text} from 'ink';
import {useEffect, useReducer, useState} from 'react';
import type {JobConfig} from '../../../config/schema.js';
import {cronProblem, describeSchedule, nextRuns} from '../../../config/schedule.js';
import type {InventoryVm} from '../../../platforms/types.js';
import {useEscape} from '../../app/key-capture.js';
import {Form} from '../../components/form/view.js';
import type {FieldSpec} from '../../components/form/use-form-state.js';
import {ActionMessage, ErrorMessage} from '../../components/message/view.js';
import {Select} from '../../components/select/view.js';
import {when} from '../../format.js';
import {idFromName} from '../../ids.js';
import {useApi, useNavigate} from '../../router/context.js';
import {useAction, useLoad} from '../../use-load.js';
import type {ScreenProps} from '../types.js';
import {VmPicker} from './vm-picker.js';
import {selectedVms, initPicker} from './vm-picker-state.js';
import {fromJob, initWizard, scheduleOf, STEP_TITLES, STEPS, toJob, wizardReducer, type WizardState} from './wizard-state.js';

const yesNo = (key: string, label: string): FieldSpec => ({key, label, kind: 'toggle'});

export function JobWizard(props: ScreenProps) {
  const api = useApi();
  const editId = props.params.id;
  const setup = useLoad(async () => {
    const [connections, repositories, job, webhooks] = await Promise.all([
      api.list('connections'),
      api.list('repositories'),
      editId ? api.get<JobConfig>('jobs', editId) : Promise.resolve(undefined),
      // A daemon without webhooks (older) has no such collection: the step just shows none.
      api.list('webhooks').catch(() => []),
    ]);
    return {connections, repositories, job, webhooks};
  }, [editId]);
  if (setup.error && !setup.data) return <ErrorMessage error={setup.error} />;
  if (!setup.data) return <Text color="cyan">… loading</Text>;
  const {connections, repositories, job, webhooks} = setup.data;
  if (job && 'repository' in job.source) {
    return <ErrorMessage error={{message: 'This is a copy job: the wizard makes backup jobs.', hint: 'Open the job and choose "Edit the job": copy jobs have their own form.'}} />;
  }
  const first = job
    ? fromJob(job)
    : initWizard({repository: String(repositories[0]?.id ?? '')}, undefined, connections[0] ? String(connections[0].id) : undefined);
  return <Wizard {...props} initial={first} connections={connections} repositories={repositories} webhooks={webhooks} />;
}

function Wizard(props: ScreenProps & {initial: WizardState; connections: Record<string, unknown>[]; repositories: Record<string, unknown>[]; webhooks: Record<string, unknown>[]}) {
  const api = useApi();
  const nav = useNavigate();
  const [s, dispatch] = useReducer(wizardReducer, props.initial);
  useEscape(() => dispatch({type: 'back'}));
  // c in the VM step switches the connection whose inventory is shown (a job reads from one).
  const switchConnection = () => {
    if (props.connections.length < 2) return;
    const i = props.connections.findIndex((c) => c.id === s.connection);
    dispatch({type: 'connection', id: String(props.connections[(i + 1) % props.connections.length]!.id)});
  };
  useEffect(() => {
    if (s.left) nav({type: 'pop'});
  }, [s.left, nav]);
  const step = STEPS[s.step]!;
  // After `c` (or `r`) useLoad drops the previous answer, so the previous connection's VMs are
  // never shown (nor picked) under the new one's name, and keys typed meanwhile wait for the list.
  const [refreshes, setRefreshes] = useState(0);
  const loaded = useLoad(async () => (s.connection ? api.inventory(s.connection, refreshes > 0) : {at: undefined, vms: []}), [s.connection, refreshes]);
  const current = loaded.data;
  const inventory = {...loaded, data: current?.vms};
  const action = useAction();
  const next = (values?: Record<string, string>) => dispatch({type: 'next', values});
  const save = async (run: boolean) => {
    const taken = run || !s.editing ? (await api.list('jobs').catch(() => [])).map((j) => String(j.id)) : [];
    const id = s.editing ?? idFromName(s.values.name ?? '', taken);
    const body = toJob(s, id);
    const r = await action.run('Saving the job', () => (s.editing ? api.update('jobs', id, body) : api.create('jobs', body)), () => 'Job saved.');
    if (!r.ok) return;
    // The job's screen says it was saved (the wizard that said so is gone).
    if (!run) return nav({type: 'replace', route: {name: 'job', params: {id, notice: s.editing ? 'Job saved.' : 'Job created.'}}});
    const started = await action.run('Starting the job', () => api.startJob(id));
    if (started.ok) nav({type: 'replace', route: {name: 'session', params: {id: started.value.id}}});
  };
  let body;
  const form = (fields: FieldSpec[], label?: string) => (
    <Form key={step} fields={fields} initial={s.values} submitLabel={label ?? 'next step'} onChange={(values) => dispatch({type: 'values', values})} onSubmit={next} />
  );
  switch (step) {
    case 'name':
      body = form([
        {key: 'name', label: 'Name', kind: 'text', placeholder: 'e.g. nightly web servers'},
        {key: 'description', label: 'Description', kind: 'text', placeholder: '(optional)'},
      ]);
      break;
    case 'vms':
      body = (
        <Box flexDirection="column">
          <Text wrap="truncate-end">
            {props.connections.length > 1 ? `Connection: ${String(props.connections.find((c) => c.id === s.connection)?.name ?? '')} ` : ''}
            <Text dimColor>
              {props.connections.length > 1 ? '(c switches; a job backs up VMs of one connection) · ' : ''}
              {current?.at ? `inventory of ${age(current.at)}` : ''}
            </Text>
          </Text>
          {inventory.error ? <ErrorMessage error={inventory.error} /> : null}
          {inventory.data ? (
            <VmPicker
              key={`${s.connection}:${current?.at ?? ''}`}
              vms={inventory.data}
              selection={s.selection}
              height={props.height - 5}
              onChange={(selection) => dispatch({type: 'selection', selection})}
              onDone={() => next()}
              onDefaults={() => dispatch({type: 'goto', step: STEPS.length - 1})}
              onRefresh={() => setRefreshes((n) => n + 1)}
              onSwitchConnection={switchConnection}
            />
          ) : inventory.loading ? (
            <Text color="cyan">… reading the inventory</Text>
          ) : null}
        </Box>
      );
      break;
    case 'storage':
      body = form([
        {key: 'repository', label: 'Repository', kind: 'choice', choices: props.repositories.map((r) => ({value: String(r.id), label: String(r.name)}))},
        {key: 'restorePoints', label: 'Keep restore points', kind: 'text'},
        {key: 'days', label: 'Keep days', kind: 'text', placeholder: '(optional)'},
        yesNo('gfs', 'GFS (long-term)'),
        {key: 'weekly', label: '  weekly', kind: 'text'},
        {key: 'monthly', label: '  monthly', kind: 'text'},
        {key: 'yearly', label: '  yearly', kind: 'text'},
      ]);
      break;
    case 'schedule': {
      const sc = scheduleOf(s.values);
      const problem = sc.kind === 'cron' ? cronProblem(sc.expression) : undefined;
      body = (
        <Box flexDirection="column">
          {form([
            {
              key: 'preset',
              label: 'Run',
              kind: 'choice',
              choices: [
                {value: 'daily', label: 'every day at'},
                {value: 'weekdays', label: 'Monday to Friday at'},
                {value: 'hours', label: 'every N hours'},
                {value: 'monthly', label: 'once a month'},
                {value: 'cron', label: 'cron expression'},
                {value: 'none', label: 'manually only'},
              ],
            },
            {key: 'at', label: 'At (HH:MM)', kind: 'text'},
            {key: 'every', label: 'Every N hours', kind: 'text'},
            {key: 'monthDay', label: 'Day of month', kind: 'text'},
            {key: 'cron', label: 'Cron', kind: 'text'},
          ])}
          {problem ? <Text color="red">✖ cron {problem}</Text> : <SchedulePreview values={s.values} />}
        </Box>
      );
      break;
    }
    case 'guest':
      body = (
        <Box flexDirection="column">
          <Text wrap="wrap">Application-consistent backups freeze the guest file systems through the QEMU guest agent while the checkpoint is taken.</Text>
          {form([
            yesNo('guestConsistency', 'Freeze guest FS'),
            {key: 'retries', label: 'Retries', kind: 'text'},
            {key: 'retryWait', label: 'Wait (minutes)', kind: 'text'},
            {key: 'bandwidth', label: 'Limit MB/s', kind: 'text', placeholder: '(unlimited)'},
            yesNo('verifyBoot', 'Boot check'),
          ])}
          <Text dimColor wrap="truncate-end">Boot check: after the backup, start each new point without network, see it boot, discard it.</Text>
        </Box>
      );
      break;
    case 'notify': {
      // Webhooks set for every job report anyway; the others are picked per job here.
      const everyJob = props.webhooks.filter((w) => w.allJobs === true).map((w) => String(w.name));
      const pickable = props.webhooks.filter((w) => w.allJobs !== true);
      body = (
        <Box flexDirection="column">
          {form([
            yesNo('onSuccess', 'Mail on success'),
            yesNo('onWarning', 'Mail on warning'),
            yesNo('onFailure', 'Mail on failure'),
            {key: 'recipients', label: 'Extra recipients', kind: 'text', placeholder: 'e.g. ops@example.com, …'},
            ...pickable.map((w) => yesNo(`webhook:${String(w.id)}`, `Webhook ${String(w.name)}`)),
          ])}
          {everyJob.length ? <Text dimColor wrap="truncate-end">Every job also reports to: {everyJob.join(', ')}</Text> : null}
        </Box>
      );
      break;
    }
    case 'summary':
      body = <Summary s={s} vms={inventory.data ?? []} onSave={(run) => void save(run)} onChange={(step) => dispatch({type: 'goto', step, fromSummary: true})} />;
      break;
  }
  return (
    <Box flexDirection="column">
      <Text bold wrap="truncate-end">
        {s.editing ? 'Edit job' : 'New backup job'} · step {s.step + 1}/{STEPS.length}: {STEP_TITLES[step]}
        <Text dimColor> (Esc: {s.step === 0 ? 'cancel' : 'back'})</Text>
      </Text>
      {s.problem ? <Text color="red">✖ {s.problem}</Text> : null}
      {body}
      <ActionMessage state={action.state} />
    </Box>
  );
}

/** "10:42 (3 min ago)": how old an inventory is, so a stale one shows. */
function age(at: string): string {
  const min = Math.round((Date.now() - Date.parse(at)) / 60_000);
  return `${when(at).slice(11)} (${min < 1 ? 'just now' : min < 120 ? `${min} min ago` : `${Math.round(min / 60)} h ago`})`;
}

function SchedulePreview(props: {values: Record<string, string>}) {
  const sc = scheduleOf(props.values);
  let words: string;
  let runs: Date[] = [];
  try {
    words = describeSchedule(sc);
    runs = nextRuns(sc, new Date(), 3);
  } catch {
    words = 'not a valid schedule yet';
  }
  return (
    <Box flexDirection="column">
      <Text wrap="truncate-end">Means: {words}</Text>
      <Text wrap="truncate-end">Next runs: {runs.length ? runs.map((d) => when(d)).join(' · ') : '–'}</Text>
    </Box>
  );
}

function Summary(props: {s: WizardState; vms: InventoryVm[]; onSave: (run: boolean) => void; onChange: (step: number) => void}) {
  const {s} = props;
  const v = s.values;
  const picked = selectedVms({...initPicker(s.selection, props.vms)});
  const sel = s.selection;
  const what = [...sel.vms.map((x) => x.name ?? x.id), ...sel.clusters.map((c) => `cluster ${c}`), ...sel.hosts.map((h) => `host ${h}`), ...sel.tags.map((t) => `tag ${t}`)];
  let sched: string;
  try {
    sched = describeSchedule(scheduleOf(v));
  } catch {
    sched = 'invalid';
  }
  return (
    <Box flexDirection="column">
      <Text wrap="truncate-end">Name: {v.name}{v.description ? ` – ${v.description}` : ''}</Text>
      <Text wrap="truncate-end">
        VMs: {what.join(', ')} ({picked.length} now){sel.exclude.length ? ` · excluding ${sel.exclude.length}` : ''}
      </Text>
      <Text wrap="truncate-end">
        Repository: {v.repository} · keep {v.restorePoints || '–'} points{v.days ? `, ${v.days} days` : ''}{v.gfs === 'yes' ? ` · GFS ${v.weekly}w/${v.monthly}m/${v.yearly}y` : ''}
      </Text>
      <Text wrap="truncate-end">Schedule: {sched}</Text>
      <Text wrap="truncate-end">
        Guest freeze: {v.guestConsistency} · boot check {v.verifyBoot} · retries {v.retries} · mail on {[v.onSuccess === 'yes' && 'success', v.onWarning === 'yes' && 'warning', v.onFailure === 'yes' && 'failure'].filter(Boolean).join('/') || 'nothing'}
      </Text>
      <Select
        items={[
          {value: 'save', label: 'Save the job'},
          {value: 'run', label: 'Save and run the job now'},
          ...STEPS.slice(0, -1).map((st, i) => ({value: `step:${i}`, label: `Change: ${STEP_TITLES[st].toLowerCase()}`})),
        ]}
        visible={4}
        onChoose={(item) => (item.value.startsWith('step:') ? props.onChange(Number(item.value.slice(5))) : props.onSave(item.value === 'run'))}
      />
    </Box>
  );
}
