/** A small table (ink-table does not load on Ink 6: ecosystem P6). The header is dimmed. */
import {Box, Text} from 'ink';
import {tableLines, type Column} from './layout.js';

export function Table(props: {columns: readonly Column[]; rows: readonly string[][]; width: number; colors?: (string | undefined)[]}) {
  const lines = tableLines(props.columns, props.rows, props.width);
  return (
    <Box flexDirection="column">
      <Text dimColor>{lines[0]}</Text>
      {lines.slice(1).map((l, i) => (
        <Text key={i} color={props.colors?.[i]} wrap="truncate-end">
          {l}
        </Text>
      ))}
    </Box>
  );
}
