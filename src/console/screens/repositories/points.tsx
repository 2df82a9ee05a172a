/**
 * The restore points of one repository, newest first per VM (a VM can be narrowed to with `/`):
 * size, type, protection; on one of them: restore from here, protect or lift the protection,
 * forget it (asks first). "← Back" leaves.
 */
import {Box, Text} from 'ink';
import {useState} from 'react';
import type {RestorePointInfo} from '../../api.js';
import {Confirm} from '../../components/confirm/view.js';
import {ActionMessage, ErrorMessage} from '../../components/message/view.js';
import {Select} from '../../components/select/view.js';
import {bytes, when} from '../../format.js';
import {useApi, useNavigate} from '../../router/context.js';
import {useAction, useLoad} from '../../use-load.js';

/** Newest first within each VM, VMs by name. */
export function sortPoints(points: readonly RestorePointInfo[]): RestorePointInfo[] {
  return [...points].sort((a, b) => (a.vmName === b.vmName ? (a.time < b.time ? 1 : -1) : a.vmName.localeCompare(b.vmName)));
}

export function RestorePoints(props: {repository: string; height: number; width: number; onDone: () => void}) {
  const api = useApi();
  const nav = useNavigate();
  const points = useLoad(() => api.restorePoints(props.repository));
  const action = useAction();
  const [chosen, setChosen] = useState<string | undefined>();
  const [forgetting, setForgetting] = useState(false);
  if (points.error && !points.data) return <ErrorMessage error={points.error} />;
  if (!points.data) return <Text color="cyan">… reading restore points</Text>;
  const point = points.data.find((p) => p.id === chosen);
  if (point && forgetting) {
    return (
      <Confirm
        question={`Forget restore point ${point.id} of ${point.vmName} (${when(point.time)}, ${point.type})?`}
        detail={`It can no longer be restored.${point.protected ? ' It is protected: forgetting it lifts that too.' : ''} Other restore points are not affected; garbage collection frees its space.`}
        yes="Yes, forget it"
        onNo={() => setForgetting(false)}
        onYes={async () => {
          setForgetting(false);
          const r = await action.run('Forgetting', () => api.forgetRestorePoint(props.repository, point.id), () => `Forgot restore point ${point.id}.`);
          if (r.ok) {
            setChosen(undefined);
            points.reload();
          }
        }}
      />
    );
  }
  if (point) {
    return (
      <Box flexDirection="column">
        <Text bold wrap="truncate-end">
          {point.vmName} · {when(point.time)} · {point.type}
        </Text>
        <Text wrap="truncate-end">
          {bytes(point.sizeBytes)} of disks · {point.disks?.length ?? 0} disk(s){point.protected ? ' · protected' : ''}
          {point.vmExists === false ? ' · the VM no longer exists' : ''}
        </Text>
        <Text dimColor wrap="truncate-end">
          {point.id}
        </Text>
        <Select
          key={`point:${point.id}:${String(point.protected)}`}
          items={[
            {value: 'restore', label: 'Restore from here'},
            {value: 'protect', label: point.protected ? 'Lift the protection' : 'Protect it', hint: point.protected ? 'retention may remove it again' : 'retention never removes it'},
            {value: 'forget', label: 'Forget it', hint: 'asks first'},
            {value: 'back', label: '← Back to the restore points'},
          ]}
          onChoose={async (item) => {
            if (item.value === 'restore') nav({type: 'push', route: {name: 'restore', params: {repository: props.repository, vm: point.vmId, point: point.id}}});
            else if (item.value === 'protect') {
              const r = await action.run(point.protected ? 'Lifting the protection' : 'Protecting', () => api.protectRestorePoint(props.repository, point.id, !point.protected), (v) => (v.protected ? 'Protected: retention never removes it.' : 'No longer protected.'));
              if (r.ok) points.reload();
            } else if (item.value === 'forget') setForgetting(true);
            else setChosen(undefined);
          }}
        />
        <ActionMessage state={action.state} />
      </Box>
    );
  }
  const list = sortPoints(points.data);
  const nameWidth = Math.max(8, Math.min(24, props.width - 50));
  return (
    <Box flexDirection="column">
      <Text bold>Restore points ({list.length})</Text>
      <Select
        key="points"
        items={[
          ...list.map((p) => ({
            value: p.id,
            label: `${p.vmName.slice(0, nameWidth).padEnd(nameWidth)}  ${when(p.time)}  ${p.type.padEnd(11)} ${bytes(p.sizeBytes).padStart(9)}${p.protected ? '  protected' : ''}`,
          })),
          {value: '<back', label: '← Back'},
        ]}
        visible={Math.max(3, props.height - 4)}
        onChoose={(item) => (item.value === '<back' ? props.onDone() : setChosen(item.value))}
      />
      <ActionMessage state={action.state} />
    </Box>
  );
}
