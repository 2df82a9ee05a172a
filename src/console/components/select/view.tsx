/**
 * A vertical menu: `❯` marks the focused item (so it reads without colour), a window of
 * `visible` items scrolls with the focus, and ↑/↓ markers say there is more.
 *
 * The marker is ink-select-input's Indicator (the pointer figure, with its ASCII fallback on
 * terminals without Unicode). Its SelectInput itself is not used: the console's key handling
 * (use-select.ts over use-keys.ts) keeps keys typed ahead over a slow SSH link in order and
 * routes them to the screen that is in front, which SelectInput's own useInput does not.
 */
import {Box, Text, type Key} from 'ink';
import {Indicator} from 'ink-select-input';
import type {ReactNode} from 'react';
import {useSelect} from './use-select.js';

export interface SelectItem {
  label: string;
  value: string;
  /** Dimmed text after the label. */
  hint?: string;
}

export function Select(props: {
  items: readonly SelectItem[];
  onChoose: (item: SelectItem, index: number) => void;
  onFocus?: (item: SelectItem, index: number) => void;
  visible?: number;
  isActive?: boolean;
  initialFocus?: number;
  render?: (item: SelectItem, focused: boolean) => ReactNode;
  /** Keys the menu does not take itself, with the item focused when the key came. */
  onKey?: (input: string, key: Key, item: SelectItem | undefined) => void;
}) {
  const visible = Math.max(1, Math.min(props.visible ?? 10, props.items.length || 1));
  const s = useSelect({items: props.items, visible, isActive: props.isActive, initialFocus: props.initialFocus, onChoose: props.onChoose, onFocus: props.onFocus, onKey: props.onKey});
  if (props.items.length === 0) return <Text dimColor>(nothing to choose)</Text>;
  const shown = props.items.slice(s.top, s.top + s.visible);
  return (
    <Box flexDirection="column">
      {s.top > 0 ? <Text dimColor>  ↑ more</Text> : null}
      {shown.map((item, i) => {
        const focused = s.top + i === s.focus;
        return (
          <Box key={item.value}>
            <Indicator isSelected={focused} />
            {props.render ? (
              props.render(item, focused)
            ) : (
              <Text wrap="truncate-end">
                <Text color={focused ? 'cyan' : undefined} bold={focused}>
                  {item.label}
                </Text>
                {item.hint ? <Text dimColor> {item.hint}</Text> : null}
              </Text>
            )}
          </Box>
        );
      })}
      {s.top + s.visible < props.items.length ? <Text dimColor>  ↓ more</Text> : null}
    </Box>
  );
}
