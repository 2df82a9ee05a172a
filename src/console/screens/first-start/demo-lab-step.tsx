/**
 * The demo-lab step of the first start: asks the daemon to set the lab up (POST /demo-lab, which
 * may install libvirt and QEMU, so it can take minutes the first time), then says what it made.
 * On success the walk-through goes on with the lab's repository and connections in place; on
 * failure the daemon's message and hint are shown with "try again" or "skip".
 */
import {Box, Text} from 'ink';
import {ErrorMessage} from '../../components/message/view.js';
import {Select} from '../../components/select/view.js';
import {StatusLine} from '../../components/status/view.js';
import {useApi} from '../../router/context.js';
import {useLoad} from '../../use-load.js';
import {stillSettingUp} from '../../../api/contract.js';

export function DemoLabStep(props: {onDone: () => void; onSkip: () => void}) {
  const api = useApi();
  const lab = useLoad(
    () =>
      api.demoLab().catch((err: unknown) => {
        throw stillSettingUp(err);
      }),
    [],
  );
  if (lab.loading)
    return <Text color="cyan" wrap="wrap">… Setting up the demo lab (the first time, installing libvirt and QEMU can take a few minutes)</Text>;
  if (lab.error || !lab.data)
    return (
      <Box flexDirection="column">
        <ErrorMessage error={lab.error ?? {message: 'The daemon answered nothing.'}} />
        <Select
          items={[
            {value: 'retry', label: 'Try again'},
            {value: 'skip', label: 'Skip: set up my own repository and platform'},
          ]}
          onChoose={(item) => (item.value === 'retry' ? lab.reload() : props.onSkip())}
        />
      </Box>
    );
  const d = lab.data;
  return (
    <Box flexDirection="column">
      <StatusLine tone="ok">
        Demo lab ready: {d.libvirt.vms.length} libvirt VMs, {d.ovirt.vms.length} oVirt VMs
      </StatusLine>
      <Text wrap="truncate-end">  Repository: {d.repository.name} ({d.repository.path})</Text>
      <Text wrap="truncate-end">  {d.libvirt.name}: {d.libvirt.vms.map((v) => v.name).join(', ')}</Text>
      <Text wrap="truncate-end">  {d.ovirt.name}: {d.ovirt.vms.map((v) => v.name).join(', ')}</Text>
      <Text wrap="wrap">Next: create a job (the last step of this walk-through) and run it; then restore from it.</Text>
      <Select items={[{value: 'next', label: 'Continue'}]} onChoose={() => props.onDone()} />
    </Box>
  );
}
