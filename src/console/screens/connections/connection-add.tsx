/** Adds a connection: first which platform, then that platform's form. */
import {Box, Text} from 'ink';
import {useState} from 'react';
import {Select} from '../../components/select/view.js';
import {MorpheusForm} from './morpheus-form.js';
import {OvirtForm} from './ovirt-form.js';

export function ConnectionAdd(props: {onDone: (id: string) => void}) {
  const [kind, setKind] = useState<string | undefined>();
  if (kind === 'ovirt') return <OvirtForm onDone={props.onDone} />;
  if (kind === 'morpheus') return <MorpheusForm onDone={props.onDone} />;
  return (
    <Box flexDirection="column">
      <Text>Which platform?</Text>
      <Select
        items={[
          {value: 'ovirt', label: 'OLVM / oVirt engine', hint: 'REST API + imageio'},
          {value: 'morpheus', label: 'HPE Morpheus VM Essentials', hint: 'KVM hosts over SSH'},
        ]}
        onChoose={(item) => setKind(item.value)}
      />
    </Box>
  );
}
