/**
 * First start: walks an administrator through the set-up, one step at a time; every step
 * validates as it goes (the connection is tested before it is saved) and can be skipped.
 * It opens with the offer of a demo lab (which brings a repository and two connections), and
 * the last step opens the New Backup Job wizard.
 */
import {Box, Text} from 'ink';
import {useEffect, useReducer} from 'react';
import {useEscape} from '../../app/key-capture.js';
import {Select} from '../../components/select/view.js';
import {StatusLine} from '../../components/status/view.js';
import {useNavigate} from '../../router/context.js';
import {ConnectionAdd} from '../connections/connection-add.js';
import {EmailForm} from '../email/email-form.js';
import {RepositoryForm} from '../repositories/repository-form.js';
import type {ScreenProps} from '../types.js';
import {WorkerForm} from '../workers/worker-form.js';
import {DemoLabStep} from './demo-lab-step.js';
import {initSetup, SETUP_STEPS, setupReducer, type SetupStep} from './first-start-state.js';

const ABOUT: Record<SetupStep, {title: string; text: string; now: string; skip?: string}> = {
  demo: {
    title: 'Demo lab',
    text: 'Set up a demo lab? (two libvirt VMs and an oVirt simulator with two VMs) It runs on this machine, with a repository and both connections ready, so you can create a job, run it and restore within minutes.',
    now: 'Yes: set up the demo lab',
    skip: 'No: set up my own repository and platform',
  },
  repository: {title: 'Backup repository', text: 'Where restore points are kept: a directory on a local disk. Deduplicated and compressed.', now: 'Add a repository now'},
  connection: {
    title: 'Virtualization platform',
    text: 'An OLVM/oVirt engine (URL, user, password; you confirm its CA) or HPE Morpheus VM Essentials hosts (SSH; you confirm their host keys). The connection is tested before it is saved.',
    now: 'Connect a platform now',
  },
  workers: {title: 'Workers', text: 'Where disk tasks run and how many at once. Without workers, the appliance itself runs 4 at a time.', now: 'Add a worker now'},
  email: {title: 'Email reports', text: 'Who gets a report after each job, and through which mail server. You can send a test message.', now: 'Set up email now'},
  job: {title: 'First backup job', text: 'The New Backup Job wizard: VMs, repository and retention, schedule, guest processing, notifications.', now: 'Create a backup job now'},
};

export function FirstStart(props: ScreenProps) {
  const nav = useNavigate();
  const [s, dispatch] = useReducer(setupReducer, undefined, initSetup);
  useEscape(() => dispatch({type: 'back'}));
  useEffect(() => {
    if (s.left) nav({type: 'pop'});
  }, [s.left, nav]);
  const name = SETUP_STEPS[s.step];
  useEffect(() => {
    // The job wizard is a screen of its own; the walk-through hands over to it.
    if (name === 'job' && s.form) nav({type: 'replace', route: {name: 'job-wizard'}});
  }, [name, s.form, nav]);
  const done = () => dispatch({type: 'done'});
  if (!name)
    return (
      <Box flexDirection="column">
        <Text bold>Set-up finished</Text>
        {SETUP_STEPS.map((n) => (
          <StatusLine key={n} tone={s.outcome[n] === 'done' ? 'ok' : n === 'demo' ? 'idle' : 'warning'}>
            {ABOUT[n].title}: {s.outcome[n] === 'done' ? 'done' : n === 'demo' ? 'not set up (vmbackup demo-lab sets it up later)' : 'skipped – do it later from the menu (m)'}
          </StatusLine>
        ))}
        <Select items={[{value: 'home', label: 'Go to the dashboard'}]} onChoose={() => nav({type: 'reset'})} />
      </Box>
    );
  const about = ABOUT[name];
  const header = (
    <Text bold wrap="truncate-end">
      Set-up {s.step + 1}/{SETUP_STEPS.length}: {about.title}
    </Text>
  );
  if (s.form)
    return (
      <Box flexDirection="column">
        {header}
        {name === 'demo' ? (
          <DemoLabStep onDone={() => dispatch({type: 'demo-done'})} onSkip={() => dispatch({type: 'skip'})} />
        ) : name === 'repository' ? <RepositoryForm onDone={done} /> : name === 'connection' ? <ConnectionAdd onDone={done} /> : name === 'workers' ? <WorkerForm onDone={done} /> : name === 'email' ? <EmailForm onDone={done} /> : null}
      </Box>
    );
  return (
    <Box flexDirection="column">
      {header}
      <Text wrap="wrap">{about.text}</Text>
      <Select
        key={name}
        items={[
          {value: 'now', label: about.now},
          {value: 'skip', label: about.skip ?? 'Skip: do it later from the menu'},
        ]}
        onChoose={(item) => dispatch({type: item.value === 'now' ? 'now' : 'skip'})}
      />
    </Box>
  );
}
