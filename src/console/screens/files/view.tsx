/**
 * The file browser (file-level restore): the files of one restore point, read by libguestfs on
 * the daemon without restoring anything. ↑↓ move, Enter opens a directory (".." goes up),
 * Space marks an entry, Backspace goes up, c copies the marked entries (or the one under the
 * cursor) to a directory on the appliance, with owners, modes and times; Esc goes up, and at /
 * leaves. Leaving closes the browser on the daemon (it also closes after 10 idle minutes).
 */
import {Box, Text} from 'ink';
import {useEffect, useState} from 'react';
import {posix} from 'node:path';
import type {GuestEntry} from '../../api.js';
import {useEscape} from '../../app/key-capture.js';
import {Form} from '../../components/form/view.js';
import {ActionMessage, ErrorMessage} from '../../components/message/view.js';
import {Select} from '../../components/select/view.js';
import {bytes, when} from '../../format.js';
import {useApi, useNavigate} from '../../router/context.js';
import {useAction, useLoad} from '../../use-load.js';
import type {ScreenProps} from '../types.js';

function childPath(dir: string, name: string): string {
  return dir === '/' ? `/${name}` : `${dir}/${name}`;
}

function label(e: GuestEntry, marked: boolean): string {
  const name = e.type === 'dir' ? `${e.name}/` : e.type === 'link' ? `${e.name} → ${e.target ?? ''}` : e.name;
  return `${marked ? '[x]' : '[ ]'} ${name}`;
}

export function FileBrowser(props: ScreenProps) {
  const api = useApi();
  const nav = useNavigate();
  const action = useAction();
  const repository = props.params.repository ?? '';
  const point = props.params.point ?? '';
  const [path, setPath] = useState('/');
  const [marked, setMarked] = useState<Set<string>>(new Set());
  /** The entry under the cursor, with the directory it is in (a stale one from another directory does not count). */
  const [focus, setFocus] = useState<{dir: string; name: string} | undefined>();
  /** Space, c and Backspace on the list, with the entry focused when the key came. */
  const onKey = (input: string, key: {backspace: boolean; delete: boolean}, item: {value: string} | undefined) => {
    if (copying || !dir.data) return;
    if (input === ' ' && item && item.value !== '..') {
      const p = childPath(path, item.value);
      setMarked((m) => {
        const next = new Set(m);
        if (next.has(p)) next.delete(p);
        else next.add(p);
        return next;
      });
    } else if (key.backspace || key.delete) up();
    else if (input === 'c' && (marked.size > 0 || (item && item.value !== '..'))) {
      if (item) setFocus({dir: path, name: item.value});
      setCopying(true);
    }
  };
  const [copying, setCopying] = useState(false);
  const [started] = useState(() => Date.now());
  const [, tick] = useState(0);
  const session = useLoad(() => api.openFiles({repository, restorePointId: point}), [repository, point]);
  const id = session.data?.id;
  // The browser ends with the screen.
  useEffect(() => {
    if (!id) return;
    return () => void api.closeFiles(id).catch(() => {});
  }, [api, id]);
  // Seconds while libguestfs starts.
  useEffect(() => {
    if (session.data || session.error) return;
    const t = setInterval(() => tick((n) => n + 1), 1000);
    return () => clearInterval(t);
  }, [session.data, session.error]);
  const dir = useLoad(async () => (id ? api.listFiles(id, path) : null), [id, path]);
  const up = () => {
    if (path === '/') return nav({type: 'pop'});
    setPath(posix.dirname(path));
  };
  useEscape(() => (copying ? setCopying(false) : up()));
  const entries = dir.data?.entries ?? [];
  const focused = focus?.dir === path ? focus.name : undefined;
  if (session.error) return <ErrorMessage error={session.error} />;
  if (!session.data) {
    return (
      <Box flexDirection="column">
        <Text color="cyan">… starting libguestfs on the restore point ({Math.round((Date.now() - started) / 1000)} s; 15–20 s without KVM)</Text>
      </Box>
    );
  }
  const s = session.data;
  const chosen = marked.size > 0 ? [...marked] : focused && focused !== '..' ? [childPath(path, focused)] : [];
  const where = s.layout.kind === 'os' ? (s.layout.os ?? 'OS') : s.layout.mounts.map((m) => `${m.mountpoint}=${m.device}`).join(' ');
  const head = (
    <Text wrap="truncate-end">
      <Text bold>{s.vmName}</Text> <Text dimColor>{when(s.time)} · {where}</Text>
    </Text>
  );
  if (copying) {
    return (
      <Box flexDirection="column">
        {head}
        <Text wrap="truncate-end">Copy {chosen.length === 1 ? chosen[0] : `${chosen.length} marked entries`} to a directory on this appliance (made if missing; nothing there is overwritten):</Text>
        <Form
          fields={[{key: 'to', label: 'Directory', kind: 'text', placeholder: `/var/tmp/restore-${s.vmName.replace(/[^A-Za-z0-9._-]/g, '_')}`}]}
          initial={{to: `/var/tmp/restore-${s.vmName.replace(/[^A-Za-z0-9._-]/g, '_')}`}}
          onSubmit={(v) => {
            const to = v.to?.trim() ?? '';
            setCopying(false);
            void action
              .run(`Copying ${chosen.length} item(s) to ${to}`, () => api.getFiles(s.id, chosen, to), (r) => `Copied ${r.copied.length} item(s) to ${to}${r.skipped.length ? `; skipped ${r.skipped.length} (not files)` : ''}.`)
              .then((r) => r.ok && setMarked(new Set()));
          }}
        />
        <ActionMessage state={action.state} />
      </Box>
    );
  }
  const items = [
    ...(path === '/' ? [] : [{value: '..', label: '..', hint: 'up'}]),
    ...entries.map((e) => ({value: e.name, label: label(e, marked.has(childPath(path, e.name))), hint: `${e.type === 'dir' ? '' : bytes(e.size)} ${when(e.mtime)}`.trim()})),
  ];
  return (
    <Box flexDirection="column">
      {head}
      <Text bold wrap="truncate-end">
        {path}
        {marked.size ? <Text dimColor> · {marked.size} marked</Text> : null}
      </Text>
      {dir.error ? <ErrorMessage error={dir.error} /> : null}
      {dir.data && entries.length === 0 ? <Text dimColor>(empty directory)</Text> : null}
      {dir.data ? (
        items.length ? (
          <Select
            key={path}
            items={items}
            visible={Math.max(3, props.height - 5)}
            // Back from the copy form: the cursor where it was.
            initialFocus={Math.max(0, items.findIndex((i) => i.value === focused))}
            onFocus={(item) => setFocus({dir: path, name: item.value})}
            onKey={onKey}
            onChoose={(item) => {
              if (item.value === '..') return up();
              const e = entries.find((x) => x.name === item.value);
              if (e?.type === 'dir') setPath(childPath(path, e.name));
            }}
          />
        ) : null
      ) : !dir.error ? (
        <Text color="cyan">… reading {path}</Text>
      ) : null}
      <Text dimColor wrap="truncate-end">Enter open · Space mark · c copy out · Backspace/Esc up</Text>
      <ActionMessage state={action.state} />
    </Box>
  );
}
