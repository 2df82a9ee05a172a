/** The libvirt platform adapter: public API. */
export {LibvirtPlatform, type LibvirtPlatformOptions} from './platform.js';
export {type HostConnection, type LibvirtHostConfig, type NbdTransportSetting} from './host.js';
export {type TrustedCheckpoints} from './cleanup.js';
export {CHECKPOINT_PREFIX} from './plan.js';
