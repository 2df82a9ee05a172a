import {describe, expect, it} from 'vitest';
import {formReducer, formValues, initForm} from '../../src/console/components/form/use-form-state.js';
import {barText} from '../../src/console/components/progress-bar/bar.js';
import {initSelect, selectReducer} from '../../src/console/components/select/use-select-state.js';
import {cell, tableLines} from '../../src/console/components/table/layout.js';
import {initTextInput, textInputReducer} from '../../src/console/components/text-input/use-text-input-state.js';
import {bytes, duration, timeLeft} from '../../src/console/format.js';
import {initRouter, routerReducer, top} from '../../src/console/router/use-router-state.js';

describe('select reducer', () => {
  it('moves, stops at the ends, scrolls the window and records each choice', () => {
    let s = initSelect(5, 2);
    s = selectReducer(s, {type: 'prev'});
    expect(s.focus).toBe(0);
    for (let i = 0; i < 10; i++) s = selectReducer(s, {type: 'next'});
    expect(s.focus).toBe(4);
    expect(s.top).toBe(3);
    s = selectReducer(s, {type: 'choose'});
    s = selectReducer(s, {type: 'choose'});
    expect(s.chosen).toEqual({index: 4, seq: 2});
    s = selectReducer(s, {type: 'first'});
    expect([s.focus, s.top]).toEqual([0, 0]);
  });
  it('keeps the focus inside the list when items disappear, and an empty list cannot choose', () => {
    let s = selectReducer(initSelect(5, 3, 4), {type: 'resize', count: 2, visible: 3});
    expect(s.focus).toBe(1);
    s = selectReducer(initSelect(0, 3), {type: 'choose'});
    expect(s.chosen).toBeUndefined();
  });
});

describe('text input reducer', () => {
  it('inserts at the cursor, edits unicode by character, drops control characters', () => {
    let s = initTextInput('vm');
    s = textInputReducer(s, {type: 'insert', text: ' ü;"x'});
    expect(s.value).toBe('vm ü;"x');
    s = textInputReducer(s, {type: 'home'});
    s = textInputReducer(s, {type: 'insert', text: 'a\x1b\r'});
    expect(s).toEqual({value: 'avm ü;"x', cursor: 1});
    s = textInputReducer(s, {type: 'end'});
    s = textInputReducer(s, {type: 'backspace'});
    s = textInputReducer(s, {type: 'backspace'});
    s = textInputReducer(s, {type: 'backspace'});
    expect(s.value).toBe('avm ü');
    s = textInputReducer(s, {type: 'left'});
    s = textInputReducer(s, {type: 'delete'});
    expect(s.value).toBe('avm ');
  });
});

describe('form reducer', () => {
  const fields = [
    {key: 'name', label: 'Name', kind: 'text' as const},
    {key: 'kind', label: 'Kind', kind: 'choice' as const, choices: [{value: 'a', label: 'A'}, {value: 'b', label: 'B'}]},
    {key: 'on', label: 'On', kind: 'toggle' as const},
  ];
  it('Enter moves down and submits on the last field; choices and toggles cycle', () => {
    let s = initForm(fields, {name: 'x'});
    s = formReducer(s, {type: 'edit', action: {type: 'insert', text: 'y'}});
    s = formReducer(s, {type: 'enter'});
    s = formReducer(s, {type: 'cycle', step: -1});
    s = formReducer(s, {type: 'edit', action: {type: 'insert', text: 'ignored'}});
    s = formReducer(s, {type: 'enter'});
    s = formReducer(s, {type: 'cycle', step: 1});
    expect(s.submitted).toBe(0);
    s = formReducer(s, {type: 'enter'});
    expect(s.submitted).toBe(1);
    expect(formValues(s)).toEqual({name: 'xy', kind: 'b', on: 'yes'});
  });
});

describe('router reducer', () => {
  it('pushes, pops to home and no further, closes help before popping', () => {
    let s = initRouter({name: 'dashboard'}, {name: 'first-start'});
    s = routerReducer(s, {type: 'push', route: {name: 'job', params: {id: 'x'}}});
    expect(top(s)).toEqual({name: 'job', params: {id: 'x'}});
    s = routerReducer(s, {type: 'help'});
    s = routerReducer(s, {type: 'pop'});
    expect([s.help, s.stack.length]).toEqual([false, 3]);
    s = routerReducer(routerReducer(routerReducer(s, {type: 'pop'}), {type: 'pop'}), {type: 'pop'});
    expect(s.stack).toEqual([{name: 'dashboard'}]);
    s = routerReducer(s, {type: 'replace', route: {name: 'menu'}});
    expect(s.stack).toEqual([{name: 'menu'}]);
  });
});

describe('formatting and layout', () => {
  it('draws bars, sizes, durations and time left', () => {
    expect(barText(0.5, 10)).toBe('█████░░░░░');
    expect(barText(Number.NaN, 4)).toBe('░░░░');
    expect(barText(2, 3)).toBe('███');
    expect(bytes(1536)).toBe('1.5 KiB');
    expect(duration(3_725_000)).toBe('1h 02m');
    expect(timeLeft(50, 100, 10)).toBe(5000);
    expect(timeLeft(0, 100, 0)).toBeUndefined();
  });
  it('fits a table into the width and truncates with an ellipsis', () => {
    const lines = tableLines([{title: 'Name', width: 40, flex: true}, {title: 'Size', width: 10, align: 'right'}], [['a'.repeat(60), '1 GiB']], 30);
    for (const l of lines) expect([...l].length).toBeLessThanOrEqual(30);
    expect(lines[1]).toContain('…');
    expect(cell('ab', 4, 'right')).toBe('  ab');
  });
});
