import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeWorldDatabases } from '../../src/sim/mmdb-world.js';
import { startMaxmindSim, type MaxmindSim, type MaxmindSimOptions } from '../../src/sim/maxmind-sim.js';

export const OLD_BUILD = new Date('2026-01-06T08:00:00Z');
export const NEW_BUILD = new Date('2026-01-09T08:00:00Z');
export const ACCOUNT_ID = '424242';
export const LICENSE_KEY = 'LK_s3cr3t_Zq9xW';

/** Small GeoLite2 City and ASN databases (two /8s) built at `buildEpoch`. */
export async function writeDatabases(dir: string, buildEpoch: Date): Promise<void> {
  await writeWorldDatabases({ dir, seed: 3, coverage: [1, 45], buildEpoch });
}

/** SHA-256 of every file in `dir` (hidden ones too), to prove a failed update changed nothing. */
export async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of (await readdir(dir)).sort()) {
    out[name] = createHash('sha256').update(await readFile(join(dir, name))).digest('hex');
  }
  return out;
}

export interface Fixture {
  root: string;
  /** What the simulated server publishes. */
  served: string;
  /** The operator's MaxMind folder. */
  local: string;
  sim: MaxmindSim;
  close(): Promise<void>;
}

export async function fixture(simOptions: Omit<MaxmindSimOptions, 'dir'> = {}, builds: { served?: Date; local?: Date } = {}): Promise<Fixture> {
  const root = await mkdtemp(join(tmpdir(), 'geoip-update-'));
  const served = join(root, 'served');
  const local = join(root, 'local');
  await writeDatabases(served, builds.served ?? NEW_BUILD);
  if (builds.local) await writeDatabases(local, builds.local);
  const sim = await startMaxmindSim({ dir: served, accountId: ACCOUNT_ID, licenseKey: LICENSE_KEY, ...simOptions });
  return {
    root, served, local, sim,
    close: async () => {
      await sim.close();
      await rm(root, { recursive: true, force: true });
    },
  };
}
