/**
 * Standalone simulator: `npm run ovirt-sim -- --port 8443 [--delay-ms 1000] [--legacy-json]`.
 * Prints the engine URL, the credentials and the CA fingerprint, then serves until killed.
 */
import {parseArgs} from 'node:util';
import {startSimulator} from './index.js';

const {values} = parseArgs({
  options: {
    port: {type: 'string', default: '8443'},
    'delay-ms': {type: 'string', default: '1000'},
    'legacy-json': {type: 'boolean', default: false},
    password: {type: 'string'},
  },
});
const sim = await startSimulator({
  port: Number(values.port), delayMs: Number(values['delay-ms']), legacyJson: values['legacy-json'], password: values.password,
});
const lines = [
  `oVirt engine simulator listening`,
  `  url:             ${sim.url}`,
  `  user:            ${sim.user}`,
  `  password:        ${sim.password}`,
  `  CA fingerprint:  SHA256 ${sim.caFingerprint}`,
  `  CA certificate:  ${sim.url}/services/pki-resource?resource=ca-certificate&format=X509-PEM-CA`,
  `  VMs:             ${[...sim.state.vms.values()].map((v) => v.name).join(', ')}`,
  `  faults:          POST ${sim.url.replace('/ovirt-engine', '')}/sim/faults {"transferUrlUnreachable":true,...}`,
];
console.log(lines.join('\n'));
const shutdown = () => void sim.stop().then(() => process.exit(0));
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);
