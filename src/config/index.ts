/**
 * The appliance's configuration: schemas (schema.ts), schedules (schedule.ts), field-named
 * validation (parse.ts), secrets (secrets.ts) and the durable lowdb store (store.ts).
 */
export * from './schema.js';
export * from './schedule.js';
export * from './parse.js';
export * from './secrets.js';
export * from './store.js';
export {DurableJsonFile} from './durable-json-file.js';
