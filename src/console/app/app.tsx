/**
 * The console's shell: a title line, the current screen, a key line. It owns the router
 * reducer and the keys every screen shares — Esc back, `?` help, `q` quit — and hands the
 * ConsoleApi to screens through context. Keys are dispatched only, so bursts apply in order.
 */
import {useKeys} from '../components/use-keys.js';
import {Box, Text, useApp} from 'ink';
import {useEffect, useReducer, useRef} from 'react';
import type {ConsoleApi} from '../api.js';
import {ApiContext, RouterContext} from '../router/context.js';
import {initRouter, routerReducer, top, type Route} from '../router/use-router-state.js';
import {SCREENS} from '../screens/index.js';
import {KeyCaptureContext, type KeyCapture} from './key-capture.js';
import {useTerminalSize} from './use-terminal-size.js';

export interface AppProps {
  api: ConsoleApi;
  /** The screen to open over the dashboard (the first-start walk-through, in tests any screen). */
  first?: Route;
  onQuit?: () => void;
}

export function App(props: AppProps) {
  const [router, dispatch] = useReducer(routerReducer, undefined, () => initRouter({name: 'dashboard'}, props.first));
  const capture = useRef<KeyCapture>({owners: 0, escape: null});
  const {exit} = useApp();
  const size = useTerminalSize();
  useKeys((input, key) => {
    if (key.escape) {
      if (router.help) dispatch({type: 'help', open: false});
      else if (capture.current.escape) capture.current.escape();
      else dispatch({type: 'pop'});
    } else if (capture.current.owners > 0) return; // a form or search decides about q and ? itself
    else if (input === '?') dispatch({type: 'help'});
    else if (input === 'q') dispatch({type: 'quit'});
  });
  useEffect(() => {
    if (router.quit) {
      props.onQuit?.();
      exit();
    }
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [router.quit]);
  const route = top(router);
  const screen = SCREENS[route.name] ?? SCREENS.dashboard!;
  const width = Math.max(40, size.columns);
  const height = Math.max(10, size.rows - 2);
  const crumbs = router.stack.map((r) => (SCREENS[r.name] ?? SCREENS.dashboard!).title).join(' › ');
  return (
    <ApiContext.Provider value={props.api}>
      <RouterContext.Provider value={dispatch}>
        <KeyCaptureContext.Provider value={capture}>
          <Box flexDirection="column" width={width}>
            <Text bold wrap="truncate-start">
              vmbackup › {crumbs.replace(/^Dashboard( › )?/, '') || 'Dashboard'}
            </Text>
            <Box flexDirection="column" height={height} overflow="hidden">
              {router.help ? <Help title={screen.title} lines={screen.help} /> : null}
              {/* Hidden, not unmounted, under the help: a half-filled form keeps its values. */}
              <Box display={router.help ? 'none' : 'flex'} flexDirection="column">
                <screen.Component key={router.stack.length + route.name} params={route.params ?? {}} width={width} height={height} />
              </Box>
            </Box>
            <Text dimColor wrap="truncate-end">
              {router.help ? 'Esc or ? close help · q quit' : `${router.stack.length > 1 ? 'Esc back · ' : ''}? help · q quit${screen.keys ? ` · ${screen.keys}` : ''}`}
            </Text>
          </Box>
        </KeyCaptureContext.Provider>
      </RouterContext.Provider>
    </ApiContext.Provider>
  );
}

function Help(props: {title: string; lines: readonly string[]}) {
  return (
    <Box flexDirection="column">
      <Text bold>Help: {props.title}</Text>
      {props.lines.map((l, i) => (
        <Text key={i} wrap="wrap">
          {l}
        </Text>
      ))}
      <Text> </Text>
      <Text>Everywhere: ↑↓ move · Enter choose · Esc back · ? help · q quit.</Text>
      <Text>Status: ✔ success · ⚠ warning · ✖ failed · ▶ running.</Text>
    </Box>
  );
}
