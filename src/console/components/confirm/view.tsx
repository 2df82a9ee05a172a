/**
 * A yes/no question before something that cannot be undone (removing a repository or a
 * connection from the appliance). "No" is the first choice, so an Enter typed ahead keeps things.
 */
import {Box, Text} from 'ink';
import {Select} from '../select/view.js';

export function Confirm(props: {question: string; detail?: string; yes: string; no?: string; onYes: () => void; onNo: () => void}) {
  return (
    <Box flexDirection="column">
      <Text color="yellow" wrap="wrap">
        ⚠ {props.question}
      </Text>
      {props.detail ? <Text wrap="wrap">{props.detail}</Text> : null}
      <Select
        items={[
          {value: 'no', label: props.no ?? 'No, keep it'},
          {value: 'yes', label: props.yes},
        ]}
        onChoose={(item) => (item.value === 'yes' ? props.onYes() : props.onNo())}
      />
    </Box>
  );
}
