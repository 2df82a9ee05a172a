/** The terminal's size, updated on resize (the console grows with the window). At least 80×24 is assumed. */
import {useStdout} from 'ink';
import {useEffect, useReducer} from 'react';

export function useTerminalSize(): {columns: number; rows: number} {
  const {stdout} = useStdout();
  const read = () => ({columns: stdout.columns || 80, rows: (stdout as {rows?: number}).rows || 24});
  const [size, update] = useReducer((_: {columns: number; rows: number}, n: {columns: number; rows: number}) => n, undefined, read);
  useEffect(() => {
    const on = () => update(read());
    stdout.on('resize', on);
    return () => {
      stdout.off('resize', on);
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [stdout]);
  return size;
}
