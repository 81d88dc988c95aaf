/**
 * A small MaxMind DB (.mmdb) writer for test, demo and benchmark databases: no npm package
 * writes the format (docs/PROTOCOLS.md §3.4), and the maxmind reader is the proof that ours is right.
 *
 * The search tree is a binary trie over address bits held in two typed arrays. IPv4 lives
 * under ::/96 of an IPv6 tree and is aliased at ::ffff:0:0/96, as in MaxMind's own databases.
 * A later insert wins over everything it covers, so a /24 inserted after its /16 carves a hole.
 */
import { rename, writeFile } from 'node:fs/promises';
import { canonicalKey, DataEncoder, MmdbTyped, type MmdbMap, type MmdbValue } from './mmdb-data.js';

export { mmdbDouble, MmdbTyped } from './mmdb-data.js';
export type { MmdbMap, MmdbValue } from './mmdb-data.js';

export interface MmdbWriterOptions {
  /** e.g. 'GeoLite2-City'. */
  databaseType: string;
  /** language → text, e.g. { en: 'Simulated GeoLite2 City' }. */
  description?: Record<string, string>;
  languages?: string[];
  /** 6 (default): IPv6 tree holding IPv4 too; 4: IPv4-only tree. */
  ipVersion?: 4 | 6;
  /** Chosen automatically (the smallest that fits) when omitted. */
  recordSize?: 24 | 28 | 32;
  /** Default: now. Readers take it as the database build date. */
  buildEpoch?: Date;
}

const EMPTY = -1;
/** Tree records: >= 0 a node index, EMPTY, or -2 - id for data record `id`. */
const dataRef = (id: number): number => -2 - id;
const METADATA_MARKER = Buffer.from('abcdef4d61784d696e642e636f6d', 'hex');

/** Parse an address into 16 bytes (IPv4 as ::a.b.c.d) and tell whether it was IPv4. */
export function parseAddress(text: string): { bytes: Uint8Array; ipv4: boolean } {
  const bytes = new Uint8Array(16);
  if (!text.includes(':')) {
    const v4 = parseIpv4(text);
    if (!v4) throw new RangeError(`not an IP address: ${text}`);
    bytes.set(v4, 12);
    return { bytes, ipv4: true };
  }
  let body = text;
  const groups: number[] = [];
  const dot = body.lastIndexOf(':');
  if (body.includes('.', dot)) {
    const v4 = parseIpv4(body.slice(dot + 1));
    if (!v4) throw new RangeError(`not an IP address: ${text}`);
    body = `${body.slice(0, dot + 1)}${((v4[0] << 8) | v4[1]).toString(16)}:${((v4[2] << 8) | v4[3]).toString(16)}`;
  }
  const halves = body.split('::');
  if (halves.length > 2) throw new RangeError(`not an IP address: ${text}`);
  const parse = (s: string): number[] =>
    s === ''
      ? []
      : s.split(':').map((g) => {
          if (!/^[0-9a-fA-F]{1,4}$/.test(g)) throw new RangeError(`not an IP address: ${text}`);
          return parseInt(g, 16);
        });
  const head = parse(halves[0]);
  const tail = halves.length === 2 ? parse(halves[1]) : [];
  const fill = 8 - head.length - tail.length;
  if (halves.length === 2 ? fill < 1 : fill !== 0) throw new RangeError(`not an IP address: ${text}`);
  groups.push(...head, ...new Array<number>(halves.length === 2 ? fill : 0).fill(0), ...tail);
  groups.forEach((g, i) => {
    bytes[i * 2] = g >>> 8;
    bytes[i * 2 + 1] = g & 0xff;
  });
  return { bytes, ipv4: false };
}

function parseIpv4(text: string): number[] | null {
  const parts = text.split('.');
  if (parts.length !== 4 || !parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255)) return null;
  return parts.map(Number);
}

/** '1.2.3.0/24' → bits on the 128-bit scale (96 + 24); a bare address is a host route. */
export function parseNetwork(network: string): { bytes: Uint8Array; prefix: number; ipv4: boolean } {
  const [addr, len, extra] = network.split('/');
  if (extra !== undefined) throw new RangeError(`not a network: ${network}`);
  const { bytes, ipv4 } = parseAddress(addr);
  const max = ipv4 ? 32 : 128;
  const plen = len === undefined ? max : /^\d{1,3}$/.test(len) ? Number(len) : NaN;
  if (!(plen >= 0 && plen <= max)) throw new RangeError(`bad prefix length in ${network}`);
  let prefix = ipv4 ? 96 + plen : plen;
  // ::ffff:a.b.c.d/n is the same IPv4 network (that range is an alias of the IPv4 subtree).
  const mapped = !ipv4 && prefix >= 96 && bytes.subarray(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
  if (mapped) bytes[10] = bytes[11] = 0;
  for (let bit = prefix; bit < 128; bit++) {
    if (bitAt(bytes, bit)) throw new RangeError(`host bits set in ${network}`);
  }
  return { bytes, prefix, ipv4: ipv4 || mapped };
}

function bitAt(bytes: Uint8Array, i: number): number {
  return (bytes[i >> 3] >> (7 - (i & 7))) & 1;
}

export class MmdbWriter {
  readonly #opts: Required<Omit<MmdbWriterOptions, 'recordSize'>> & { recordSize?: 24 | 28 | 32 };
  #left = new Int32Array(1024);
  #right = new Int32Array(1024);
  #nodes = 1;
  readonly #records: MmdbMap[] = [];
  readonly #recordIds = new Map<string, number>();
  #networks = 0;

  constructor(opts: MmdbWriterOptions) {
    this.#opts = {
      databaseType: opts.databaseType,
      description: opts.description ?? {},
      languages: opts.languages ?? ['en'],
      ipVersion: opts.ipVersion ?? 6,
      recordSize: opts.recordSize,
      buildEpoch: opts.buildEpoch ?? new Date(),
    };
    this.#left[0] = this.#right[0] = EMPTY;
  }

  /** Networks inserted so far. */
  get networkCount(): number {
    return this.#networks;
  }

  /** Distinct records inserted so far (identical records are stored once). */
  get recordCount(): number {
    return this.#records.length;
  }

  /**
   * Map `network` ('1.2.3.0/24', '2001:db8::/32', or a bare address) to `record`.
   * Records are kept by reference until toBuffer(): do not mutate one after inserting it.
   */
  insert(network: string, record: MmdbMap): void {
    const { bytes, prefix, ipv4 } = parseNetwork(network);
    if (this.#opts.ipVersion === 4 && !ipv4) throw new RangeError(`IPv6 network ${network} in an IPv4 database`);
    const key = canonicalKey(record);
    let id = this.#recordIds.get(key);
    if (id === undefined) {
      id = this.#records.length;
      this.#records.push(record);
      this.#recordIds.set(key, id);
    }
    const start = this.#opts.ipVersion === 4 ? 96 : 0;
    this.#set(bytes, start, prefix, dataRef(id));
    this.#networks++;
  }

  #newNode(left: number, right: number): number {
    if (this.#nodes === this.#left.length) {
      const grow = (a: Int32Array<ArrayBuffer>): Int32Array<ArrayBuffer> => {
        const b = new Int32Array(a.length * 2);
        b.set(a);
        return b;
      };
      this.#left = grow(this.#left);
      this.#right = grow(this.#right);
    }
    const n = this.#nodes++;
    this.#left[n] = left;
    this.#right[n] = right;
    return n;
  }

  /** Point bits [start, prefix) at `value`, splitting any larger leaf on the way. */
  #set(bytes: Uint8Array, start: number, prefix: number, value: number): void {
    if (prefix === start) {
      // The whole space: the root must stay a node, so both halves get the value.
      this.#left[0] = this.#right[0] = value;
      return;
    }
    let node = 0;
    for (let depth = start; depth < prefix - 1; depth++) {
      const side = bitAt(bytes, depth) ? this.#right : this.#left;
      let child = side[node];
      if (child < 0) {
        child = this.#newNode(child, child);
        // #newNode may have replaced the arrays.
        (bitAt(bytes, depth) ? this.#right : this.#left)[node] = child;
      }
      node = child;
    }
    (bitAt(bytes, prefix - 1) ? this.#right : this.#left)[node] = value;
  }

  /** The record value at the end of a path (a node, a leaf or EMPTY met on the way). */
  #get(bytes: Uint8Array, prefix: number): number {
    let value = 0;
    for (let depth = 0; depth < prefix && value >= 0; depth++) {
      value = bitAt(bytes, depth) ? this.#right[value] : this.#left[value];
    }
    return value;
  }

  /** Merge nodes whose halves hold the same leaf; returns what replaces `node`. */
  #simplify(node: number, done: Uint8Array): number {
    if (done[node]) return node;
    const l = this.#left[node] >= 0 ? this.#simplify(this.#left[node], done) : this.#left[node];
    const r = this.#right[node] >= 0 ? this.#simplify(this.#right[node], done) : this.#right[node];
    this.#left[node] = l;
    this.#right[node] = r;
    if (l === r && l < 0 && node !== 0) return l;
    done[node] = 1;
    return node;
  }

  toBuffer(): Buffer {
    if (this.#opts.ipVersion === 6) {
      // Alias ::ffff:0:0/96 to whatever ::/96 holds (the IPv4 subtree).
      const mapped = new Uint8Array(16);
      mapped[10] = mapped[11] = 0xff;
      this.#set(mapped, 0, 96, this.#get(new Uint8Array(16), 96));
    }
    this.#simplify(0, new Uint8Array(this.#nodes));

    // Number reachable nodes breadth-first (root = 0) and collect the records they use.
    const number = new Int32Array(this.#nodes).fill(-1);
    const order = new Int32Array(this.#nodes);
    const usedRecords: number[] = [];
    const recordSeen = new Uint8Array(this.#records.length);
    let count = 0;
    number[0] = 0;
    order[count++] = 0;
    for (let i = 0; i < count; i++) {
      const n = order[i];
      for (const child of [this.#left[n], this.#right[n]]) {
        if (child >= 0 && number[child] < 0) {
          number[child] = count;
          order[count++] = child;
        } else if (child <= -2 && !recordSeen[-2 - child]) {
          recordSeen[-2 - child] = 1;
          usedRecords.push(-2 - child);
        }
      }
    }
    const nodeCount = count;

    const data = new DataEncoder({ dedup: true });
    const offsets = new Float64Array(this.#records.length);
    for (const id of usedRecords) offsets[id] = data.write(this.#records[id]);

    const maxValue = nodeCount + 16 + data.length;
    const fits = (bits: number): boolean => maxValue < 2 ** bits;
    const recordSize = this.#opts.recordSize ?? (fits(24) ? 24 : fits(28) ? 28 : 32);
    if (!fits(recordSize)) throw new RangeError(`record size ${recordSize} is too small for ${nodeCount} nodes and ${data.length} data bytes`);

    const nodeBytes = recordSize / 4;
    const tree = Buffer.alloc(nodeCount * nodeBytes + 16);
    const encode = (v: number): number => (v >= 0 ? number[v] : v === EMPTY ? nodeCount : nodeCount + 16 + offsets[-2 - v]);
    for (let i = 0; i < nodeCount; i++) {
      const n = order[i];
      const l = encode(this.#left[n]);
      const r = encode(this.#right[n]);
      const at = i * nodeBytes;
      if (recordSize === 24) {
        tree.writeUIntBE(l, at, 3);
        tree.writeUIntBE(r, at + 3, 3);
      } else if (recordSize === 28) {
        tree.writeUIntBE(l & 0xffffff, at, 3);
        tree[at + 3] = ((l >>> 24) << 4) | (r >>> 24);
        tree.writeUIntBE(r & 0xffffff, at + 4, 3);
      } else {
        tree.writeUInt32BE(l, at);
        tree.writeUInt32BE(r, at + 4);
      }
    }

    const meta = new DataEncoder({ dedup: false, initialSize: 1024 });
    meta.write({
      binary_format_major_version: new MmdbTyped('uint16', 2),
      binary_format_minor_version: new MmdbTyped('uint16', 0),
      build_epoch: new MmdbTyped('uint64', BigInt(Math.floor(this.#opts.buildEpoch.getTime() / 1000))),
      database_type: this.#opts.databaseType,
      description: this.#opts.description,
      ip_version: new MmdbTyped('uint16', this.#opts.ipVersion),
      languages: this.#opts.languages,
      node_count: new MmdbTyped('uint32', nodeCount),
      record_size: new MmdbTyped('uint16', recordSize),
    } satisfies Record<string, MmdbValue>);
    return Buffer.concat([tree, data.bytes(), METADATA_MARKER, meta.bytes()]);
  }

  /** Write the database to `path` atomically (temp file, then rename). */
  async write(path: string): Promise<void> {
    const tmp = `${path}.${process.pid}.tmp`;
    await writeFile(tmp, this.toBuffer());
    await rename(tmp, path);
  }
}
