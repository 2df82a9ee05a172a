/** The router's dispatcher, and the ConsoleApi, handed to screens through React context. */
import {createContext, useContext, type Dispatch} from 'react';
import type {ConsoleApi} from '../api.js';
import type {RouterAction} from './use-router-state.js';

export const RouterContext = createContext<Dispatch<RouterAction>>(() => {});
export const useNavigate = () => useContext(RouterContext);

export const ApiContext = createContext<ConsoleApi | null>(null);
export function useApi(): ConsoleApi {
  const api = useContext(ApiContext);
  if (!api) throw new Error('useApi outside <ApiContext.Provider>');
  return api;
}
