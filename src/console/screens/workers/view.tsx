/** Workers: their placement and slots in use (from the daemon's status); add or remove one. */
import {Box, Text} from 'ink';
import {useState} from 'react';
import type {WorkerConfig} from '../../../config/schema.js';
import {ActionMessage, ErrorMessage} from '../../components/message/view.js';
import {Select} from '../../components/select/view.js';
import {useApi, useNavigate} from '../../router/context.js';
import {useAction, useLoad} from '../../use-load.js';
import type {ScreenProps} from '../types.js';
import {WorkerForm} from './worker-form.js';
import {removeItem} from '../remove-item.js';

const where = (w: WorkerConfig) => (w.placement.kind === 'appliance' ? 'on the appliance' : w.placement.kind === 'cluster' ? `cluster ${w.placement.cluster}` : `host ${w.placement.host}`);

export function Workers(props: ScreenProps) {
  const api = useApi();
  const nav = useNavigate();
  const action = useAction();
  const [confirm, setConfirm] = useState<string | undefined>();
  const data = useLoad(async () => {
    const [workers, status] = await Promise.all([api.list<WorkerConfig>('workers'), api.status()]);
    return {workers, status};
  });
  if (data.error && !data.data) return <ErrorMessage error={data.error} />;
  if (!data.data) return <Text color="cyan">… loading</Text>;
  const {workers, status} = data.data;
  return (
    <Box flexDirection="column">
      {workers.length === 0 ? <Text wrap="wrap">No workers configured: disk tasks run on the appliance.</Text> : null}
      {status.waitingForWorkers > 0 ? <Text color="yellow">⚠ {status.waitingForWorkers} disk task(s) wait for a free slot</Text> : null}
      <Select
        items={[
          ...workers.map((w) => {
            const s = status.workers.find((x) => x.id === w.id);
            return {value: w.id, label: confirm === w.id ? `${w.name}: press Enter again to remove it` : w.name, hint: `${where(w)} · ${s ? `${s.used}/${s.slots}` : w.slots} slots`};
          }),
          {value: '+add', label: '+ Add a worker'},
        ]}
        visible={props.height - 3}
        onChoose={(item) => {
          if (item.value === '+add') nav({type: 'push', route: {name: 'worker-add'}});
          else if (confirm !== item.value) setConfirm(item.value);
          else void removeItem(action, api, 'workers', item.value, 'Worker removed.', data.reload);
        }}
      />
      <Text dimColor>Enter on a worker, twice, removes it.</Text>
      <ActionMessage state={action.state} />
    </Box>
  );
}

export function WorkerAdd() {
  const nav = useNavigate();
  return <WorkerForm onDone={() => nav({type: 'pop'})} />;
}
