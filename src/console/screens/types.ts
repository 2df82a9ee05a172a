/** What a screen is: a component that gets its route's params and the space it may use. */
import type {ComponentType} from 'react';

export interface ScreenProps {
  params: Record<string, string | undefined>;
  width: number;
  /** Rows available between the title and key lines. */
  height: number;
}

export interface ScreenDef {
  title: string;
  help: readonly string[];
  /** Extra keys shown in the key line. */
  keys?: string;
  Component: ComponentType<ScreenProps>;
}
