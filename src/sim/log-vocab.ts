/**
 * What simulated attackers say: credentials, commands, SSH client profiles and download names,
 * shaped after public Cowrie logs. Used only by the log generator.
 */
import { createHash } from 'node:crypto';

/** mulberry32: tiny, fast, deterministic; the generator never touches Math.random. */
export class Prng {
  #a: number;
  constructor(seed: number) {
    this.#a = seed >>> 0;
  }
  next(): number {
    let t = (this.#a = (this.#a + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }
  hex(digits: number): string {
    let s = '';
    while (s.length < digits) s += this.int(0x10000).toString(16).padStart(4, '0');
    return s.slice(0, digits);
  }
  /** Heavy-ish tail: 1 + geometric with the given mean excess, capped. */
  geometric(mean: number, cap: number): number {
    const p = 1 / (1 + mean);
    let n = 0;
    while (n < cap && !this.chance(p)) n++;
    return n;
  }
}

export const USERNAMES = [
  'root', 'root', 'root', 'root', 'root', 'admin', 'admin', 'user', 'test', 'ubuntu', 'oracle', 'pi', 'support',
  'guest', 'ftpuser', 'postgres', 'git', 'debian', 'centos', 'hadoop', 'deploy', 'minecraft', 'sol', 'ubnt',
];

export const PASSWORDS = [
  '123456', 'admin', 'password', '12345678', 'root', '1234', '123', 'qwerty', 'P@ssw0rd', 'admin123', 'toor', '',
  '123456789', 'raspberry', 'ubnt', 'test', '1qaz2wsx', 'passw0rd', 'abc123', 'changeme', 'default', '000000',
];

export const COMMANDS = [
  'uname -a',
  'uname -s -v -n -r -m',
  'cat /proc/cpuinfo | grep name | wc -l',
  'cat /proc/cpuinfo | grep name | head -n 1 | awk \'{print $4,$5,$6,$7,$8,$9;}\'',
  'free -m | grep Mem | awk \'{print $2 ,$3, $4, $5, $6, $7}\'',
  'ls -lh $(which ls)',
  'which ls',
  'crontab -l',
  'w',
  'uname -m',
  'top',
  'whoami',
  'lscpu | grep Model',
  'df -h | head -n 2 | awk \'FNR == 2 {print $2;}\'',
  'nproc',
  'cat /etc/issue',
  'enable',
  'system',
  'shell',
  'sh',
  'cd ~; chattr -ia .ssh; lockr -ia .ssh',
  'cd ~ && rm -rf .ssh && mkdir .ssh && echo "ssh-rsa AAAAB3NzaC1yc2EAAAABJQAAAQEArDp4cun2lhr4KUhBGE7VvAcwdli2a8dbnrTOrbMz1+5O73fcBOx8NVbUT0bUanUV9tJ2/9p7+vD0EpZ3Tz/+0kX34uAx1RV/75GVOmNx+9EuWOnvNoaJe0QXxziIg9eLBHpgLMuakb5+BgTFB+rKJAw9u9FSTDengvS8hX1kNFS4Mjux0hJOK8rvcEmPecjdySYMb66nylAKGwCEE6WEQHmd1mUPgHwGQ0hWCwsQk13yCGPK5w6hYp5zYkFnvlC8hGmd4Ww+u97k6pfTGTUbJk14ujvcD9iUKQTTWYYjIIu5PmUux5bsZ0R4WFwdIe6+i6rBLAsPKgAySVKPRK+oRw== mdrfckr">>.ssh/authorized_keys && chmod -R go= ~/.ssh && cd ~',
  'echo "root:Wq8eT2rY"|chpasswd|bash',
  'rm -rf /tmp/secure.sh; rm -rf /tmp/auth.sh; pkill -9 secure.sh; pkill -9 auth.sh; echo > /etc/hosts.deny; pkill -9 sleep;',
  'cat /proc/mounts; /bin/busybox PZJOV',
  'ps | grep \'[Mm]iner\'',
  'echo -e "\\x6F\\x6B"',
];

export const DOWNLOAD_NAMES = ['bins.sh', 'x86', 'mips', 'arm7', 'sshd', 'kinsing', '.s', 'dota3.tar.gz', 'ohshit.sh', 'mpsl'];

export const ARCHES = ['linux-x64-lsb', 'linux-arm-lsb', 'linux-mips-lsb', 'linux-x86-lsb'];

export interface ClientProfile {
  version: string;
  hassh: string;
  hasshAlgorithms: string;
  kexAlgs: string[];
  keyAlgs: string[];
  encCS: string[];
  macCS: string[];
  compCS: string[];
}

const md5 = (s: string) => createHash('md5').update(s).digest('hex');

function profile(version: string, kexAlgs: string[], keyAlgs: string[], encCS: string[], macCS: string[], compCS: string[]): ClientProfile {
  // hassh is by definition the MD5 of "kex;enc;mac;comp".
  const hasshAlgorithms = `${kexAlgs.join(',')};${encCS.join(',')};${macCS.join(',')};${compCS.join(',')}`;
  return { version, hassh: md5(hasshAlgorithms), hasshAlgorithms, kexAlgs, keyAlgs, encCS, macCS, compCS };
}

export const CLIENTS: ClientProfile[] = [
  profile('SSH-2.0-Go', ['curve25519-sha256', 'curve25519-sha256@libssh.org', 'ecdh-sha2-nistp256', 'ecdh-sha2-nistp384', 'ecdh-sha2-nistp521', 'diffie-hellman-group14-sha256', 'diffie-hellman-group14-sha1', 'ext-info-c'],
    ['rsa-sha2-256', 'rsa-sha2-512', 'ssh-rsa', 'ecdsa-sha2-nistp256', 'ssh-ed25519'],
    ['aes128-gcm@openssh.com', 'aes256-gcm@openssh.com', 'chacha20-poly1305@openssh.com', 'aes128-ctr', 'aes192-ctr', 'aes256-ctr'],
    ['hmac-sha2-256-etm@openssh.com', 'hmac-sha2-512-etm@openssh.com', 'hmac-sha2-256', 'hmac-sha2-512', 'hmac-sha1', 'hmac-sha1-96'], ['none']),
  profile('SSH-2.0-libssh_0.9.6', ['curve25519-sha256', 'curve25519-sha256@libssh.org', 'ecdh-sha2-nistp256', 'diffie-hellman-group18-sha512', 'diffie-hellman-group16-sha512', 'diffie-hellman-group-exchange-sha256', 'diffie-hellman-group14-sha256', 'ext-info-c'],
    ['ssh-ed25519', 'ecdsa-sha2-nistp521', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp256', 'rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'],
    ['chacha20-poly1305@openssh.com', 'aes256-gcm@openssh.com', 'aes128-gcm@openssh.com', 'aes256-ctr', 'aes192-ctr', 'aes128-ctr'],
    ['hmac-sha2-256-etm@openssh.com', 'hmac-sha2-512-etm@openssh.com', 'hmac-sha2-256', 'hmac-sha2-512'], ['none', 'zlib@openssh.com']),
  profile('SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.6', ['sntrup761x25519-sha512@openssh.com', 'curve25519-sha256', 'curve25519-sha256@libssh.org', 'ecdh-sha2-nistp256', 'diffie-hellman-group14-sha256', 'ext-info-c'],
    ['ssh-ed25519-cert-v01@openssh.com', 'ssh-ed25519', 'rsa-sha2-512', 'rsa-sha2-256'],
    ['chacha20-poly1305@openssh.com', 'aes128-ctr', 'aes192-ctr', 'aes256-ctr', 'aes128-gcm@openssh.com', 'aes256-gcm@openssh.com'],
    ['umac-64-etm@openssh.com', 'hmac-sha2-256-etm@openssh.com', 'hmac-sha2-512-etm@openssh.com', 'hmac-sha2-256'], ['none', 'zlib@openssh.com', 'zlib']),
  profile('SSH-2.0-paramiko_3.4.0', ['curve25519-sha256@libssh.org', 'ecdh-sha2-nistp256', 'diffie-hellman-group16-sha512', 'diffie-hellman-group14-sha256', 'diffie-hellman-group-exchange-sha256'],
    ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'],
    ['aes128-ctr', 'aes192-ctr', 'aes256-ctr', 'aes128-cbc', 'aes192-cbc', 'aes256-cbc', '3des-cbc'],
    ['hmac-sha2-256', 'hmac-sha2-512', 'hmac-sha2-256-etm@openssh.com', 'hmac-sha1'], ['none']),
  profile('SSH-2.0-libssh2_1.10.0', ['ecdh-sha2-nistp256', 'ecdh-sha2-nistp384', 'ecdh-sha2-nistp521', 'diffie-hellman-group-exchange-sha256', 'diffie-hellman-group14-sha1', 'diffie-hellman-group1-sha1'],
    ['ecdsa-sha2-nistp256', 'ssh-rsa', 'ssh-dss'],
    ['aes128-ctr', 'aes192-ctr', 'aes256-ctr', 'aes256-cbc', 'aes128-cbc', '3des-cbc'],
    ['hmac-sha2-256', 'hmac-sha2-512', 'hmac-sha1', 'hmac-sha1-96', 'hmac-md5'], ['none']),
  profile('SSH-2.0-PUTTY', ['diffie-hellman-group1-sha1', 'diffie-hellman-group14-sha1'], ['ssh-rsa', 'ssh-dss'],
    ['aes128-ctr', 'aes128-cbc', '3des-cbc'], ['hmac-sha1', 'hmac-sha1-96', 'hmac-md5'], ['none']),
];
