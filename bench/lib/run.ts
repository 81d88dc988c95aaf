/**
 * Running a command as a measured child process: wall time, the child's CPU time and its peak
 * resident memory (VmHWM, read from /usr/bin/time -v when present, else sampled from /proc).
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';

export interface Measured {
  code: number | null;
  stdout: string;
  stderr: string;
  wallSeconds: number;
  /** User + system CPU seconds of the child (from /usr/bin/time), or null. */
  cpuSeconds: number | null;
  /** Peak resident set size of the child in MiB, or null when it could not be read. */
  peakRssMiB: number | null;
}

const GNU_TIME = '/usr/bin/time';
const hasGnuTime = fs.existsSync(GNU_TIME) && spawnSync(GNU_TIME, ['-v', 'true'], { encoding: 'utf8' }).status === 0;

function vmHwmKiB(pid: number): number | null {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

export function measure(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<Measured> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const [file, argv] = hasGnuTime ? [GNU_TIME, ['-v', cmd, ...args]] : [cmd, args];
    const child = spawn(file, argv, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    // Without GNU time, sample the high-water mark while the child runs.
    let hwm = 0;
    const timer = hasGnuTime ? null : setInterval(() => {
      const v = child.pid === undefined ? null : vmHwmKiB(child.pid);
      if (v !== null) hwm = Math.max(hwm, v);
    }, 50);
    child.on('error', reject);
    child.on('close', (code) => {
      if (timer) clearInterval(timer);
      const wallSeconds = Number(process.hrtime.bigint() - started) / 1e9;
      let peakRssMiB: number | null = hwm ? hwm / 1024 : null;
      let cpuSeconds: number | null = null;
      if (hasGnuTime) {
        const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(stderr);
        const user = /User time \(seconds\): ([\d.]+)/.exec(stderr);
        const sys = /System time \(seconds\): ([\d.]+)/.exec(stderr);
        if (rss) peakRssMiB = Number(rss[1]) / 1024;
        if (user && sys) cpuSeconds = Number(user[1]) + Number(sys[1]);
        stderr = stderr.replace(/\n?\s*Command being timed:[\s\S]*$/, '');
      }
      resolve({ code, stdout, stderr, wallSeconds, cpuSeconds, peakRssMiB });
    });
  });
}

export interface MachineInfo {
  node: string;
  cpu: string;
  cores: number;
  memoryGiB: number;
  os: string;
  loadAverage: string;
}

export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  return {
    node: process.version,
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    loadAverage: os.loadavg().map((x) => x.toFixed(2)).join(' '),
  };
}
