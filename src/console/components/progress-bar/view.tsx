/** A progress bar with its percentage (ink-progress-bar does not load on Ink 6: ecosystem P6). */
import {Text} from 'ink';
import {barText} from './bar.js';

export function ProgressBar(props: {fraction: number; width?: number}) {
  const pct = Math.floor(Math.max(0, Math.min(1, props.fraction || 0)) * 100);
  return (
    <Text>
      <Text color="green">{barText(props.fraction, props.width ?? 20)}</Text> {String(pct).padStart(3)}%
    </Text>
  );
}
