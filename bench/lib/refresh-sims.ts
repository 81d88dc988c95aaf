/**
 * The three simulators in a process of their own, so the refresh being measured does not share
 * its event loop with them. Forked with IPC: options in, `ready` with addresses out; `stats`
 * answers the request counts; `stop` closes everything and exits.
 */
import { startCymruSim, type CymruSimOptions } from '../../src/sim/cymru-sim.js';
import { startGreyNoiseSim, type GreyNoiseSimOptions } from '../../src/sim/greynoise-sim.js';
import { startVirusTotalSim, type VirusTotalSimOptions } from '../../src/sim/virustotal-sim.js';

export interface SimsOptions {
  cymru: CymruSimOptions;
  greynoise: GreyNoiseSimOptions;
  virustotal: VirusTotalSimOptions;
}

export interface SimsReady {
  type: 'ready';
  cymru: { host: string; port: number };
  greynoiseUrl: string;
  virustotalUrl: string;
}

export interface SimsStats {
  type: 'stats';
  cymruConnections: number;
  cymruBatches: number;
  /** Most Cymru connections open at once. */
  cymruMaxConcurrent: number;
  greynoiseRequests: number;
  /** Distinct IPs GreyNoise was asked about (fewer than requests: some asked twice). */
  greynoiseDistinctIps: number;
  greynoise429: number;
  /** Most GreyNoise requests that arrived in any one-second window. */
  greynoiseMaxPerSecond: number;
  /** Arrival of the first and last GreyNoise request, ms since the epoch (0 without requests). */
  greynoiseFirst: number;
  greynoiseLast: number;
  virustotalRequests: number;
  /** CPU seconds the simulators' process has used. */
  cpuSeconds: number;
}

function maxPerSecond(times: number[]): number {
  let best = 0;
  let lo = 0;
  for (let hi = 0; hi < times.length; hi++) {
    while (times[hi] - times[lo] >= 1000) lo++;
    best = Math.max(best, hi - lo + 1);
  }
  return best;
}

async function main(): Promise<void> {
  const opts = JSON.parse(process.argv[2] ?? '{}') as SimsOptions;
  const cymru = await startCymruSim(opts.cymru);
  const greynoise = await startGreyNoiseSim(opts.greynoise);
  const virustotal = await startVirusTotalSim(opts.virustotal);
  const send = (m: SimsReady | SimsStats) => process.send!(m);
  process.on('message', (m: { type: string }) => {
    if (m.type === 'stats') {
      send({
        type: 'stats',
        cymruConnections: cymru.stats.connections,
        cymruBatches: cymru.stats.batches,
        cymruMaxConcurrent: cymru.stats.maxConcurrent,
        greynoiseRequests: greynoise.stats.requests,
        greynoiseDistinctIps: new Set(greynoise.stats.ipsRequested).size,
        greynoise429: greynoise.stats.byStatus[429] ?? 0,
        greynoiseMaxPerSecond: maxPerSecond(greynoise.stats.requestTimes),
        greynoiseFirst: greynoise.stats.requestTimes[0] ?? 0,
        greynoiseLast: greynoise.stats.requestTimes[greynoise.stats.requestTimes.length - 1] ?? 0,
        virustotalRequests: virustotal.stats.requests,
        cpuSeconds: (process.cpuUsage().user + process.cpuUsage().system) / 1e6,
      });
    } else if (m.type === 'stop') {
      void Promise.all([cymru.close(), greynoise.close(), virustotal.close()]).then(() => process.exit(0));
    }
  });
  process.on('disconnect', () => process.exit(0));
  send({ type: 'ready', cymru: { host: cymru.host, port: cymru.port }, greynoiseUrl: greynoise.url, virustotalUrl: virustotal.url });
}

if (process.send) void main();
