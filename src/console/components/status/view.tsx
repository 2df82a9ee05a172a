/** One status line: symbol, then text, both in the tone's colour. */
import {Text} from 'ink';
import {COLOR, SYMBOL, type Tone} from './status.js';

export function StatusLine(props: {tone: Tone; children: React.ReactNode}) {
  return (
    <Text color={COLOR[props.tone]} wrap="truncate-end">
      {SYMBOL[props.tone]} {props.children}
    </Text>
  );
}
