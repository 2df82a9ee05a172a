/** Workers: their placement and slots in use (from the daemon's status); add one, change one's slots, remove one (asks first). */
import {Box, Text} from 'ink';
import {useState} from 'react';
import type {WorkerConfig} from '../../../config/schema.js';
import {Form} from '../../components/form/view.js';
import {ActionMessage, ErrorMessage} from '../../components/message/view.js';
import {Select} from '../../components/select/view.js';
import {useApi, useNavigate} from '../../router/context.js';
import {useAction, useLoad} from '../../use-load.js';
import type {ScreenProps} from '../types.js';
import {WorkerForm} from './worker-form.js';
import {RemoveConfirm} from '../remove-item.js';

const where = (w: WorkerConfig) => (w.placement.kind === 'appliance' ? 'on the appliance' : w.placement.kind === 'cluster' ? `cluster ${w.placement.cluster}` : `host ${w.placement.host}`);

export function Workers(props: ScreenProps) {
  const api = useApi();
  const nav = useNavigate();
  const action = useAction();
  const [picked, setPicked] = useState<string | undefined>();
  const [mode, setMode] = useState<'actions' | 'edit' | 'remove'>('actions');
  const data = useLoad(async () => {
    const [workers, status] = await Promise.all([api.list<WorkerConfig>('workers'), api.status()]);
    return {workers, status};
  });
  if (data.error && !data.data) return <ErrorMessage error={data.error} />;
  if (!data.data) return <Text color="cyan">… loading</Text>;
  const {workers, status} = data.data;
  const w = workers.find((x) => x.id === picked);
  const leave = () => {
    setPicked(undefined);
    setMode('actions');
  };
  if (w && mode === 'remove')
    return (
      <RemoveConfirm
        action={action}
        collection="workers"
        id={w.id}
        question={`Remove the worker ${w.name}?`}
        detail="Disk tasks it would run go to the other workers, or to the appliance."
        done="Worker removed."
        onNo={() => setMode('actions')}
        after={() => {
          leave();
          data.reload();
        }}
      />
    );
  if (w && mode === 'edit')
    return (
      <Box flexDirection="column">
        <Text bold>
          {w.name} <Text dimColor>{where(w)}</Text>
        </Text>
        <Form
          fields={[{key: 'slots', label: 'Slots', kind: 'text', placeholder: '(empty: 4)'}]}
          initial={{slots: String(w.slots)}}
          submitLabel="save"
          onSubmit={async (v) => {
            const r = await action.run('Saving the worker', () => api.update('workers', w.id, {...w, slots: Number(v.slots) || 4}), () => `Worker ${w.name} saved.`);
            if (r.ok) {
              setMode('actions');
              data.reload();
            }
          }}
        />
        <ActionMessage state={action.state} />
      </Box>
    );
  if (w)
    return (
      <Box flexDirection="column">
        <Text bold>
          {w.name} <Text dimColor>{where(w)} · {w.slots} slots</Text>
        </Text>
        <Select
          key={`actions:${w.id}`}
          items={[
            {value: 'edit', label: 'Change the slots', hint: 'disks it handles at once'},
            {value: 'remove', label: 'Remove', hint: 'asks first'},
            {value: 'back', label: '← Back to the list'},
          ]}
          onChoose={(item) => (item.value === 'back' ? leave() : setMode(item.value as 'edit' | 'remove'))}
        />
        <ActionMessage state={action.state} />
      </Box>
    );
  return (
    <Box flexDirection="column">
      {workers.length === 0 ? <Text wrap="wrap">No workers configured: disk tasks run on the appliance.</Text> : null}
      {status.waitingForWorkers > 0 ? <Text color="yellow">⚠ {status.waitingForWorkers} disk task(s) wait for a free slot</Text> : null}
      <Select
        items={[
          ...workers.map((x) => {
            const st = status.workers.find((y) => y.id === x.id);
            return {value: x.id, label: x.name, hint: `${where(x)} · ${st ? `${st.used}/${st.slots}` : x.slots} slots`};
          }),
          {value: '+add', label: '+ Add a worker'},
        ]}
        visible={props.height - 3}
        onChoose={(item) => (item.value === '+add' ? nav({type: 'push', route: {name: 'worker-add'}}) : setPicked(item.value))}
      />
      <ActionMessage state={action.state} />
    </Box>
  );
}

export function WorkerAdd() {
  const nav = useNavigate();
  return <WorkerForm onDone={() => nav({type: 'pop'})} />;
}
