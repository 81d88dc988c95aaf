/**
 * Live-mode benchmark: `cowrie-loader follow` (from dist/, its own process) on SQLite while this
 * process appends to cowrie.json at a steady rate and then in one burst. Each line's timestamp is
 * its write time, so the latency of a line is the time its row is first seen in raw_events (polled
 * every 50 ms) minus that timestamp. Peak RSS of the follower is its VmHWM; the load average is
 * recorded because the machine is shared.
 *
 *   npm run bench:follow -- [--seconds 60] [--rate 2000] [--burst 100000] [--enrich] [--new-ips 0]
 *
 * --enrich: follow runs with `--enrich` against simulated MaxMind databases and the Cymru (150 ms
 * per batch) and GreyNoise simulators on 127.0.0.1. Each IP's latency is from its first line's
 * write (its first_seen) to (b) its country and ASN in ip_inventory — MaxMind hits (the world's
 * ASN database covers its network) and Cymru misses (it does not) reported apart — and (c) its
 * GreyNoise answer in enrichment_cache. The writer's events come from 250 IPs, so (b) and (c)
 * measure those 250 as they first appear; `--new-ips R` adds about R IPs never seen before per
 * second (every k-th session from a new address), so they also measure a steady arrival.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { parseArgs } from 'node:util';
import { startCymruSim } from '../src/sim/cymru-sim.js';
import { startGreyNoiseSim } from '../src/sim/greynoise-sim.js';
import { writeWorldDatabases } from '../src/sim/mmdb-world.js';
import { worldMaxmindHasAsn } from '../src/sim/world.js';
import { openStore } from '../src/store/store.js';
import { EVENTS_PER_SESSION, LiveWriter } from './lib/live-writer.js';
import { machineInfo } from './lib/run.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const LOADER = path.join(ROOT, 'dist/src/cli/cowrie-loader.js');
const { values: args } = parseArgs({
  options: { seconds: { type: 'string', default: '60' }, rate: { type: 'string', default: '2000' }, burst: { type: 'string', default: '100000' }, enrich: { type: 'boolean', default: false },
    'new-ips': { type: 'string', default: '0' } },
});
const seconds = Number(args.seconds);
const rate = Number(args.rate);
const burst = Number(args.burst);
const newIps = Number(args['new-ips']);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function vmHwmMiB(pid: number): number | null {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}

const pct = (xs: number[], p: number) => {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cowrie-bench-follow-'));
const live = path.join(root, 'logs', 'cowrie.json');
const db = path.join(root, 'cowrie.sqlite');
const url = `sqlite:${db}`;
const load0 = os.loadavg();
const writer = new LiveWriter(live);
// Sessions per second / new IPs per second: every k-th session comes from a new IP.
if (newIps > 0) writer.freshIpEvery = Math.max(1, Math.round(rate / EVENTS_PER_SESSION / newIps));
const SEED = 7;
const GREYNOISE_RATE = 50;
const enrichArgs: string[] = [];
const sims: Array<{ close(): Promise<void> }> = [];
if (args.enrich) {
  const mmdb = path.join(root, 'maxmind');
  fs.mkdirSync(mmdb);
  // The writer's IPs are in 11-15.x.x.x: the world databases need only those.
  await writeWorldDatabases({ dir: mmdb, seed: SEED, coverage: [11, 12, 13, 14, 15] });
  const cymru = await startCymruSim({ seed: SEED, latencyMsPerBatch: 150 });
  const greynoise = await startGreyNoiseSim({ seed: SEED, apiKey: 'bench-key' });
  sims.push(cymru, greynoise);
  enrichArgs.push('--enrich', '--maxmind-dir', mmdb, '--cymru-host', cymru.host, '--cymru-port', String(cymru.port),
    '--greynoise-url', greynoise.url, '--greynoise-rate', String(GREYNOISE_RATE), '--sources', 'maxmind,cymru,greynoise',
    // The default 10,000 calls a day would stop a long run part-way: the rate is what is measured.
    '--greynoise-daily-quota', '1000000');
}
const child = spawn(process.execPath, [LOADER, 'follow', path.dirname(live), '--db', url, '--quiet', ...enrichArgs], {
  stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, GREYNOISE_API_KEY: 'bench-key', COWRIE_CONFIG: '' },
});
let peak = 0;
const rssTimer = setInterval(() => { peak = Math.max(peak, vmHwmMiB(child.pid!) ?? 0); }, 500);

// Wait until the follower is up (its database exists with the schema).
let store = null as Awaited<ReturnType<typeof openStore>> | null;
for (let k = 0; k < 600 && !store; k++) {
  try {
    const s = await openStore(url, { migrate: false });
    await s.db.query('SELECT 1 FROM raw_events LIMIT 1');
    store = s;
  } catch {
    await sleep(100);
  }
}
if (!store) throw new Error('the follower did not start');
await sleep(1000);

const latencies: number[] = [];
let seen = 0;
let lastTs = '0';
// --enrich: per IP, first line written → ASN and country stored (b), → GreyNoise answer stored (c).
// Per phase: IPs first seen in the steady phase, and those new in the burst.
const asnMaxmind = { steady: [] as number[], burst: [] as number[] };
const asnCymru = { steady: [] as number[], burst: [] as number[] };
const greynoiseLat = { steady: [] as number[], burst: [] as number[] };
let burstStartIso = '9999';
const phase = (firstSeen: string) => (firstSeen < burstStartIso ? 'steady' : 'burst');
const enrichedIps = new Set<string>();
const answeredIps = new Set<string>();
// Rows written since the last poll (less a margin for commits in flight), not the whole table each time.
let enrichedSince = '0';
let answeredSince = '0';
const margin = (t: string) => new Date(Date.parse(t) - 5000).toISOString();
async function pollEnrichment(): Promise<void> {
  const now = Date.now();
  const rows = await store!.db.query<{ ip_address: string; first_seen: string; t: string }>(
    `SELECT ip_address, first_seen, enrichment_updated_at AS t FROM ip_inventory
     WHERE current_asn IS NOT NULL AND geo_country IS NOT NULL AND enrichment_updated_at > ?`, [enrichedSince]);
  for (const r of rows) {
    if (r.t > enrichedSince) enrichedSince = margin(r.t) > enrichedSince ? margin(r.t) : enrichedSince;
    if (enrichedIps.has(r.ip_address)) continue;
    enrichedIps.add(r.ip_address);
    (worldMaxmindHasAsn(r.ip_address, SEED) ? asnMaxmind : asnCymru)[phase(r.first_seen)].push(now - Date.parse(r.first_seen));
  }
  const answered = await store!.db.query<{ ip_address: string; first_seen: string; t: string }>(
    `SELECT i.ip_address, i.first_seen, c.fetched_at AS t FROM enrichment_cache c JOIN ip_inventory i ON i.ip_address = c.cache_key
     WHERE c.service = 'greynoise' AND c.fetched_at > ?`, [answeredSince]);
  for (const r of answered) {
    if (margin(r.t) > answeredSince) answeredSince = margin(r.t);
    if (answeredIps.has(r.ip_address)) continue;
    answeredIps.add(r.ip_address);
    greynoiseLat[phase(r.first_seen)].push(now - Date.parse(r.first_seen));
  }
}

async function poll(record: boolean): Promise<void> {
  if (args.enrich) await pollEnrichment();
  const rows = await store!.db.query<{ t: string }>('SELECT event_timestamp AS t FROM raw_events WHERE event_timestamp > ? ORDER BY event_timestamp', [lastTs]);
  const now = Date.now();
  for (const r of rows) {
    if (record) latencies.push(now - Date.parse(r.t));
    lastTs = r.t;
  }
  seen += rows.length;
}

// Steady phase: the writer appends `rate` lines/s; the poller records each line's latency.
const steadyLines = Math.round(seconds * rate);
let polling = true;
const poller = (async () => { while (polling) { await poll(true); await sleep(50); } })();
await writer.write(0, steadyLines, rate, true);
const steadyEnd = Date.now();
while (seen < steadyLines && Date.now() - steadyEnd < 60_000) await sleep(50);
polling = false;
await poller;
const steadyLoad = os.loadavg();
const steadyPeak = Math.max(peak, vmHwmMiB(child.pid!) ?? 0);

// Burst: `burst` lines at once; time until every one is stored.
const burstStart = Date.now();
burstStartIso = new Date(burstStart).toISOString();
await writer.write(steadyLines, steadyLines + burst, undefined, true);
const burstWritten = Date.now();
while (seen < steadyLines + burst && Date.now() - burstStart < 600_000) { await poll(false); await sleep(100); }
const burstDone = Date.now();
// --enrich: wait (bounded) for the last IPs' answers.
const [{ n: ipCount }] = await store.db.query<{ n: number }>('SELECT COUNT(*) AS n FROM ip_inventory');
const drainStart = Date.now();
while (args.enrich && Date.now() - drainStart < 600_000 && answeredIps.size < Number(ipCount)) { await pollEnrichment(); await sleep(100); }
peak = Math.max(peak, vmHwmMiB(child.pid!) ?? 0);
clearInterval(rssTimer);
child.kill('SIGTERM');
await new Promise((r) => child.on('exit', r));
writer.close();
await store.close();
for (const sim of sims) await sim.close();
const load1 = os.loadavg();

const drainS = (burstDone - burstStart) / 1000;
const lines = [
  `follow${args.enrich ? ' --enrich' : ''} benchmark${newIps ? ` (about ${newIps} new IPs/s)` : ''} (${(({ cpu, cores, node }) => `${cpu}, ${cores} cores, Node ${node}`)(machineInfo())}) — SQLite, ${seconds} s at ${rate} events/s, then a burst of ${burst}`,
  `(a) line written → raw_events row: p50 ${pct(latencies, 50)} ms, p99 ${pct(latencies, 99)} ms, max ${latencies.reduce((a, b) => Math.max(a, b), 0)} ms over ${latencies.length} lines`,
  `burst: ${burst} lines written in ${((burstWritten - burstStart) / 1000).toFixed(1)} s, all stored after ${drainS.toFixed(1)} s (${Math.round(burst / drainS)} events/s)`,
  `peak RSS of the follower: ${steadyPeak.toFixed(0)} MiB after the steady phase, ${peak.toFixed(0)} MiB at the end`,
  `load average (1/5/15 min): start ${load0.map((x) => x.toFixed(2)).join('/')}, after steady ${steadyLoad.map((x) => x.toFixed(2)).join('/')}, end ${load1.map((x) => x.toFixed(2)).join('/')}`,
  `stored: ${seen} of ${steadyLines + burst}${args.enrich ? `; IPs ${ipCount}, with ASN and country ${enrichedIps.size}, GreyNoise answered ${answeredIps.size}` : ''}`,
  ...(args.enrich ? [
    ...(['steady', 'burst'] as const).flatMap((ph) => [
      `(b) ${ph}: line written → ASN and country in ip_inventory: MaxMind hits p50 ${pct(asnMaxmind[ph], 50)} ms, p99 ${pct(asnMaxmind[ph], 99)} ms over ${asnMaxmind[ph].length} IPs; `
        + `Cymru misses (150 ms per batch) p50 ${pct(asnCymru[ph], 50)} ms, p99 ${pct(asnCymru[ph], 99)} ms over ${asnCymru[ph].length} IPs`,
      `(c) ${ph}: line written → GreyNoise answer stored (--greynoise-rate ${GREYNOISE_RATE}): p50 ${pct(greynoiseLat[ph], 50)} ms, p99 ${pct(greynoiseLat[ph], 99)} ms over ${greynoiseLat[ph].length} IPs`,
    ]),
  ] : []),
];
process.stdout.write(`${lines.join('\n')}\n`);
fs.rmSync(root, { recursive: true, force: true });
