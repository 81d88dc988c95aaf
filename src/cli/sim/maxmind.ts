/**
 * `cowrie-sim maxmind`: serve the databases of a folder (`cowrie-sim mmdb` output) over MaxMind's
 * download protocol until SIGINT/SIGTERM, so `cowrie-enrich geoip update` can be tried offline
 * (`--maxmind-url http://127.0.0.1:8083`).
 */
import { InvalidArgumentError, type Command } from 'commander';
import { UsageError } from '../../errors.js';
import { startMaxmindSim, type MaxmindSimFaults } from '../../sim/maxmind-sim.js';
import { intArg, readKeyFile, statusSummary, waitForStopSignal } from './args.js';

const FAULTS: Record<string, keyof MaxmindSimFaults> = {
  'corrupt-archive': 'corruptArchive',
  'wrong-checksum': 'wrongChecksum',
  'no-sha256': 'noSha256',
  '429': 'tooManyRequests',
};

function faultsArg(v: string): MaxmindSimFaults {
  const faults: MaxmindSimFaults = {};
  for (const name of v.split(',').filter(Boolean)) {
    const key = FAULTS[name];
    if (!key) throw new InvalidArgumentError(`unknown fault ${JSON.stringify(name)}; one of ${Object.keys(FAULTS).join(', ')}`);
    faults[key] = true;
  }
  return faults;
}

interface MaxmindSimCliOptions {
  dir: string;
  host: string;
  port: number;
  accountId?: string;
  licenseKeyFile?: string;
  dailyLimit: number;
  faults?: MaxmindSimFaults;
}

export function registerMaxmindCommand(program: Command): void {
  program
    .command('maxmind')
    .description('MaxMind download server simulator (HTTP): Basic auth, redirect to storage, .sha256, Last-Modified, daily limit')
    .requiredOption('--dir <dir>', 'folder of <EDITION>.mmdb files to serve (e.g. written by `cowrie-sim mmdb`)')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--port <port>', 'TCP port (0 = any free port)', intArg(0), 8083)
    .option('--account-id <id>', 'accept only this account ID (with --license-key-file; otherwise any credentials)')
    .option('--license-key-file <file>', 'accept only the license key in this file')
    .option('--daily-limit <n>', 'archive downloads per UTC day; past it 429 with the limit message (MaxMind GeoLite: 30)', intArg(0), 30)
    .option('--faults <list>', `comma-separated: ${Object.keys(FAULTS).join(', ')}`, faultsArg)
    .addHelpText('after', '\nExample:\n  cowrie-sim mmdb --out ./served && cowrie-sim maxmind --dir ./served\n  MAXMIND_ACCOUNT_ID=1 MAXMIND_LICENSE_KEY=k cowrie-enrich geoip update --maxmind-url http://127.0.0.1:8083 --maxmind-dir ./maxmind')
    .action(async (opts: MaxmindSimCliOptions) => {
      if ((opts.accountId === undefined) !== (opts.licenseKeyFile === undefined)) throw new UsageError('--account-id and --license-key-file go together');
      const sim = await startMaxmindSim({
        dir: opts.dir, host: opts.host, port: opts.port, dailyLimit: opts.dailyLimit, faults: opts.faults,
        accountId: opts.accountId, licenseKey: opts.licenseKeyFile ? readKeyFile(opts.licenseKeyFile) : undefined,
      });
      console.log(`maxmind simulator listening on ${sim.url} (serving ${opts.dir})`);
      await waitForStopSignal();
      await sim.close();
      console.log(`maxmind simulator stopped: ${sim.stats.requests} requests, ${sim.stats.heads} HEAD, ${sim.stats.downloads} downloads counted; answers: ${statusSummary(sim.stats.byStatus)}`);
    });
}
