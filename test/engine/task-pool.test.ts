import {describe, expect, it} from 'vitest';
import {TaskPool} from '../../src/engine/task-pool.js';

const tick = () => new Promise((r) => setTimeout(r, 1));

describe('TaskPool', () => {
  it('never runs more than its limit at once and waits for all', async () => {
    const pool = new TaskPool(3);
    let running = 0;
    let peak = 0;
    let done = 0;
    for (let i = 0; i < 20; i++) {
      await pool.add(async () => {
        running++;
        peak = Math.max(peak, running);
        await tick();
        running--;
        done++;
      });
    }
    await pool.settle();
    expect(peak).toBe(3);
    expect(done).toBe(20);
  });

  it('keeps the first failure, lets work in flight finish, and rethrows it', async () => {
    const pool = new TaskPool(2);
    let finished = 0;
    await pool.add(async () => {
      await tick();
      throw new Error('first');
    });
    await pool.add(async () => {
      await tick();
      await tick();
      finished++;
    });
    expect(pool.failed).toBe(true);
    pool.fail(new Error('second'));
    await expect(pool.settle()).rejects.toThrow('first');
    expect(finished).toBe(1);
  });
});
