/**
 * The VM step's view: the inventory by cluster (with each VM's host and disks), tags at the end,
 * `[x]` for picked, `[~]` for brought in by a cluster or tag, `[-]` for excluded; the warnings
 * for untrackable disks below. Keys go to the picker reducer only; it also decides Enter, q, ?
 * and c (see vm-picker-state.ts).
 */
import {Box, Text} from 'ink';
import {useEffect, useReducer, useRef} from 'react';
import type {InventoryVm} from '../../../platforms/types.js';
import {useOwnLetters} from '../../app/key-capture.js';
import {useNavigate} from '../../router/context.js';
import {useKeys} from '../../components/use-keys.js';
import {bytes} from '../../format.js';
import {disksOf, initPicker, pickedBy, pickerReducer, rows, trackingWarnings, type Row, type Selection} from './vm-picker-state.js';

export function VmPicker(props: {vms: InventoryVm[]; selection: Selection; height: number; onChange: (s: Selection) => void; onDone: () => void; onDefaults?: () => void; onRefresh?: () => void; onSwitchConnection?: () => void}) {
  const [s, dispatch] = useReducer(pickerReducer, undefined, () => initPicker(props.selection, props.vms));
  const nav = useNavigate();
  useOwnLetters();
  useKeys((input, key) => dispatch({type: 'key', input, key}));
  const cb = useRef(props);
  cb.current = props;
  useEffect(() => cb.current.onChange(s.sel), [s.sel]);
  useEffect(() => {
    const i = s.intent?.kind;
    if (i === 'done') cb.current.onDone();
    else if (i === 'defaults') (cb.current.onDefaults ?? cb.current.onDone)();
    else if (i === 'refresh') cb.current.onRefresh?.();
    else if (i === 'connection') cb.current.onSwitchConnection?.();
    else if (i) nav(i === 'quit' ? {type: 'quit'} : {type: 'help'});
  }, [s.intent, nav]);
  const list = rows(s);
  const warnings = trackingWarnings(s);
  const room = Math.max(3, props.height - 3 - Math.min(3, warnings.length));
  const top = Math.max(0, Math.min(s.focus - Math.floor(room / 2), list.length - room));
  return (
    <Box flexDirection="column">
      <Text dimColor wrap="truncate-end">
        {s.searching ? `Search: ${s.query}▌ (Enter ends)` : `Space pick · x exclude · d disks · / search${s.query ? ` "${s.query}"` : ''} · r refresh · Enter next · Tab defaults → summary`}
      </Text>
      {list.length === 0 ? <Text>No VM matches.</Text> : null}
      {list.slice(top, top + room).map((row, i) => (
        <RowLine key={rowKey(row)} row={row} focused={top + i === s.focus} sel={s.sel} />
      ))}
      {warnings.slice(0, 3).map((w, i) => (
        <Text key={i} color="yellow" wrap="truncate-end">
          ⚠ {w}
        </Text>
      ))}
    </Box>
  );
}

const rowKey = (r: Row) => (r.kind === 'cluster' ? `c:${r.name}` : r.kind === 'tag' ? `t:${r.name}` : r.kind === 'vm' ? `v:${r.vm.id}` : `d:${r.vm.id}:${r.key}`);

function RowLine(props: {row: Row; focused: boolean; sel: Selection}) {
  const {row, focused, sel} = props;
  let mark: string;
  let text: string;
  if (row.kind === 'cluster') {
    mark = sel.clusters.includes(row.name) ? '[x]' : '[ ]';
    text = `cluster ${row.name}`;
  } else if (row.kind === 'tag') {
    mark = sel.tags.includes(row.name) ? '[x]' : '[ ]';
    text = `tag ${row.name}`;
  } else if (row.kind === 'vm') {
    const by = pickedBy(sel, row.vm);
    mark = sel.exclude.includes(row.vm.id) ? '[-]' : by === 'vm' ? '[x]' : by ? '[~]' : '[ ]';
    const chosen = disksOf(sel, row.vm.id);
    const raw = row.vm.disks.some((d) => !d.trackable) ? ' ⚠' : '';
    text = `  ${row.vm.name}  ${row.vm.host ?? ''} · ${row.vm.state} · ${chosen ? `${chosen.length}/` : ''}${row.vm.disks.length} disk(s)${raw}`;
  } else {
    const d = row.vm.disks.find((x) => x.key === row.key)!;
    const chosen = disksOf(sel, row.vm.id);
    mark = !chosen || chosen.includes(d.key) ? '[x]' : '[ ]';
    text = `      ${d.name} ${d.format} ${bytes(d.size)}${d.trackable ? '' : ' ⚠ not trackable'}`;
  }
  return (
    <Text color={focused ? 'cyan' : undefined} wrap="truncate-end">
      {focused ? '❯ ' : '  '}
      {mark} {text}
    </Text>
  );
}
