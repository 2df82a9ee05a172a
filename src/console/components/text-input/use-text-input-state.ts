/**
 * A one-line text value with a cursor, as a pure reducer. Every printable key and edit key is
 * an action, so typed-ahead text over SSH lands in order.
 */
export interface TextInputState {
  value: string;
  cursor: number;
}

export type TextInputAction =
  | {type: 'insert'; text: string}
  | {type: 'backspace'}
  | {type: 'delete'}
  | {type: 'left'}
  | {type: 'right'}
  | {type: 'home'}
  | {type: 'end'}
  | {type: 'set'; value: string};

export const initTextInput = (value = ''): TextInputState => ({value, cursor: [...value].length});

export function textInputReducer(s: TextInputState, a: TextInputAction): TextInputState {
  // Work on code points so that unicode names edit one character at a time.
  const chars = [...s.value];
  switch (a.type) {
    case 'insert': {
      const add = [...a.text.replace(/[\r\n\t\x00-\x1f\x7f]/g, '')];
      if (add.length === 0) return s;
      chars.splice(s.cursor, 0, ...add);
      return {value: chars.join(''), cursor: s.cursor + add.length};
    }
    case 'backspace':
      if (s.cursor === 0) return s;
      chars.splice(s.cursor - 1, 1);
      return {value: chars.join(''), cursor: s.cursor - 1};
    case 'delete':
      if (s.cursor >= chars.length) return s;
      chars.splice(s.cursor, 1);
      return {value: chars.join(''), cursor: s.cursor};
    case 'left':
      return s.cursor > 0 ? {...s, cursor: s.cursor - 1} : s;
    case 'right':
      return s.cursor < chars.length ? {...s, cursor: s.cursor + 1} : s;
    case 'home':
      return {...s, cursor: 0};
    case 'end':
      return {...s, cursor: chars.length};
    case 'set':
      return initTextInput(a.value);
  }
}
