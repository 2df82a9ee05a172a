/** Public surface of the oVirt / OLVM platform. */
export {OvirtPlatform, type OvirtPlatformOptions} from './platform.js';
export {fetchEngineCa, describeCa, type EngineCa} from './fetch-ca.js';
export {EngineClient, EngineError, type EngineClientOptions} from './engine-client.js';
export {normalizeEngineUrl} from './engine-url.js';
