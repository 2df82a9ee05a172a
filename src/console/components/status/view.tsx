/** One status line: symbol, then text, both in the tone's colour; cut at the width unless `wrap` (errors and outcomes are read whole). */
import {Text} from 'ink';
import {COLOR, SYMBOL, type Tone} from './status.js';

export function StatusLine(props: {tone: Tone; children: React.ReactNode; wrap?: boolean}) {
  return (
    <Text color={COLOR[props.tone]} wrap={props.wrap ? 'wrap' : 'truncate-end'}>
      {SYMBOL[props.tone]} {props.children}
    </Text>
  );
}
