/**
 * Test helper process: opens the config store in argv[2] and rewrites it as fast as it can
 * (a repository's name carries a counter), printing "ready" after the first write, until killed.
 */
import {ConfigStore} from '../../src/config/store.js';

const store = await ConfigStore.open(process.argv[2]);
if (!store.list('repositories').some((r) => r.id === 'r1')) await store.create('repositories', {id: 'r1', name: 'gen 0', path: '/srv/r1'});
let n = Number(store.get('repositories', 'r1').name.split(' ')[1]);
process.stdout.write('ready\n');
for (;;) {
  n++;
  // A bigger document makes a torn write more likely if the adapter were not atomic.
  await store.update('repositories', 'r1', {name: `gen ${n}`, path: `/srv/r1`, healthCheck: {kind: 'cron', expression: `${n % 60} 4 * * *`}});
}
