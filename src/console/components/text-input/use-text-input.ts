/** Key bindings of a text field: printable keys insert, ←/→/Home/End move, Backspace/Delete erase. */
import type {Key} from 'ink';
import type {TextInputAction} from './use-text-input-state.js';

/** The action for one key press, or undefined when the key is not an edit key. Pure. */
export function textKeyAction(input: string, key: Partial<Key>): TextInputAction | undefined {
  if (key.leftArrow) return {type: 'left'};
  if (key.rightArrow) return {type: 'right'};
  if (key.home || (key.ctrl && input === 'a')) return {type: 'home'};
  if (key.end || (key.ctrl && input === 'e')) return {type: 'end'};
  // Terminals send DEL (0x7f) for Backspace; Ink reports it as `delete`.
  if (key.backspace || key.delete) return {type: 'backspace'};
  if (key.ctrl || key.meta || key.escape || key.return || key.tab || key.upArrow || key.downArrow || key.pageUp || key.pageDown) return undefined;
  if (input) return {type: 'insert', text: input};
  return undefined;
}
