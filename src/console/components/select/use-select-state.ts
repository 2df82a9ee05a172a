/**
 * The state of a Select menu as a pure reducer: which item has the focus, which window of items
 * is visible, and which item was chosen last (with a sequence number, so choosing the same item
 * twice is seen twice). Keys only dispatch actions here, so "↓ ↓ Enter" arriving in one chunk
 * over SSH applies in order (docs/reference/ecosystem.md P1: closure-based selects pick the first item).
 */
export interface SelectState {
  count: number;
  focus: number;
  /** First visible item. */
  top: number;
  visible: number;
  chosen?: {index: number; seq: number};
}

export type SelectAction =
  | {type: 'next'}
  | {type: 'prev'}
  | {type: 'first'}
  | {type: 'last'}
  | {type: 'choose'}
  | {type: 'resize'; count: number; visible: number};

export function initSelect(count: number, visible: number, focus = 0): SelectState {
  const f = Math.max(0, Math.min(focus, count - 1));
  return scroll({count, focus: f, top: 0, visible: Math.max(1, visible)});
}

/** Moves the window so that the focused item is inside it. */
function scroll(s: SelectState): SelectState {
  let top = s.top;
  if (s.focus < top) top = s.focus;
  if (s.focus >= top + s.visible) top = s.focus - s.visible + 1;
  top = Math.max(0, Math.min(top, Math.max(0, s.count - s.visible)));
  return top === s.top ? s : {...s, top};
}

export function selectReducer(s: SelectState, a: SelectAction): SelectState {
  switch (a.type) {
    case 'next':
      return s.focus + 1 < s.count ? scroll({...s, focus: s.focus + 1}) : s;
    case 'prev':
      return s.focus > 0 ? scroll({...s, focus: s.focus - 1}) : s;
    case 'first':
      return scroll({...s, focus: 0});
    case 'last':
      return scroll({...s, focus: Math.max(0, s.count - 1)});
    case 'choose':
      return s.count === 0 ? s : {...s, chosen: {index: s.focus, seq: (s.chosen?.seq ?? 0) + 1}};
    case 'resize': {
      const focus = Math.max(0, Math.min(s.focus, a.count - 1));
      return scroll({...s, count: a.count, visible: Math.max(1, a.visible), focus});
    }
  }
}
