/**
 * The data-section encoder of the MaxMind DB writer (MaxMind-DB spec 2.0, docs/PROTOCOLS.md §3.4).
 * Values that were written before become pointers when a pointer is shorter, so identical
 * sub-records (map keys, country maps, AS names) are stored once and shared between records.
 */

/** A value written with an explicit MaxMind type instead of the type chosen from its JS value. */
export class MmdbTyped {
  constructor(
    readonly type: 'double' | 'float' | 'uint16' | 'uint32' | 'uint64' | 'uint128' | 'int32',
    readonly value: number | bigint,
  ) {}

  /** Dedup keys are JSON; the NUL prefix keeps typed values apart from ordinary strings. */
  toJSON(): string {
    return `\u0000${this.type}:${String(this.value)}`;
  }
}

/** Force a double, e.g. a latitude that happens to be a whole number. */
export function mmdbDouble(value: number): MmdbTyped {
  return new MmdbTyped('double', value);
}

export type MmdbValue = string | number | bigint | boolean | MmdbTyped | readonly MmdbValue[] | MmdbMap;
/** A map; null and undefined members are left out, so optional fields can be passed as undefined. */
export type MmdbMap = { readonly [key: string]: MmdbValue | null | undefined };

const T_POINTER = 1;
const T_STRING = 2;
const T_DOUBLE = 3;
const T_UINT16 = 5;
const T_UINT32 = 6;
const T_MAP = 7;
const T_INT32 = 8;
const T_UINT64 = 9;
const T_UINT128 = 10;
const T_ARRAY = 11;
const T_BOOLEAN = 14;
const T_FLOAT = 15;

const MAX_SIZE = 65_821 + 0xffffff;

function jsonReplacer(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? `\u0000n:${value}` : value;
}

/** Canonical text of a value: equal texts mean equal encodings. */
export function canonicalKey(value: MmdbValue): string {
  if (typeof value === 'string') return `s${value}`;
  try {
    // Without a replacer JSON.stringify stays on its fast path; only bigints need one.
    return `j${JSON.stringify(value)}`;
  } catch {
    return `j${JSON.stringify(value, jsonReplacer)}`;
  }
}

function pointerLength(offset: number): number {
  if (offset < 2048) return 2;
  if (offset < 526_336) return 3;
  if (offset < 134_744_064) return 4;
  return 5;
}

/** A growable byte buffer holding one data section (or the metadata map). */
export class DataEncoder {
  #buf: Buffer;
  #len = 0;
  /** canonical key → offset * 8 + min(length, 7); only when dedup is on. */
  readonly #seen: Map<string, number> | null;
  /** The same for objects met before by identity: skips building their key again. */
  readonly #seenObjects = new WeakMap<object, number>();

  constructor(opts: { dedup: boolean; initialSize?: number }) {
    this.#buf = Buffer.alloc(opts.initialSize ?? 64 * 1024);
    this.#seen = opts.dedup ? new Map() : null;
  }

  get length(): number {
    return this.#len;
  }

  /** The bytes written so far (a view, not a copy). */
  bytes(): Buffer {
    return this.#buf.subarray(0, this.#len);
  }

  /**
   * Write one top-level value; returns its offset. The value itself is not remembered for
   * sharing (callers dedup whole records already), only its parts are.
   */
  write(value: MmdbValue): number {
    const start = this.#len;
    this.#writeInline(value);
    return start;
  }

  #ensure(extra: number): void {
    const need = this.#len + extra;
    if (need <= this.#buf.length) return;
    let size = this.#buf.length * 2;
    while (size < need) size *= 2;
    const next = Buffer.alloc(size);
    this.#buf.copy(next, 0, 0, this.#len);
    this.#buf = next;
  }

  #writeValue(value: MmdbValue): void {
    const seen = this.#seen;
    // Small scalars are never worth a pointer (a pointer is 2-5 bytes).
    const shareable = seen !== null && typeof value !== 'boolean' && !(typeof value === 'number' && Number.isInteger(value) && value >= -0xffff && value <= 0xffff);
    if (!shareable) {
      this.#writeInline(value);
      return;
    }
    const isObject = typeof value === 'object';
    let key: string | undefined;
    let prev = isObject ? this.#seenObjects.get(value) : undefined;
    if (prev === undefined) {
      key = canonicalKey(value);
      prev = seen.get(key);
      if (prev !== undefined && isObject) this.#seenObjects.set(value, prev);
    }
    if (prev !== undefined) {
      const offset = Math.floor(prev / 8);
      const length = prev % 8;
      if (length === 7 || pointerLength(offset) < length) {
        this.#writePointer(offset);
      } else {
        // Shorter than a pointer: copy the bytes (they are position-independent).
        this.#ensure(length);
        this.#buf.copy(this.#buf, this.#len, offset, offset + length);
        this.#len += length;
      }
      return;
    }
    const start = this.#len;
    this.#writeInline(value);
    const packed = start * 8 + Math.min(this.#len - start, 7);
    seen.set(key as string, packed);
    if (isObject) this.#seenObjects.set(value, packed);
  }

  #writePointer(offset: number): void {
    this.#ensure(5);
    const b = this.#buf;
    let p = this.#len;
    if (offset < 2048) {
      b[p++] = (T_POINTER << 5) | (offset >>> 8);
      b[p++] = offset & 0xff;
    } else if (offset < 526_336) {
      const v = offset - 2048;
      b[p++] = (T_POINTER << 5) | (1 << 3) | (v >>> 16);
      b.writeUInt16BE(v & 0xffff, p);
      p += 2;
    } else if (offset < 134_744_064) {
      const v = offset - 526_336;
      b[p++] = (T_POINTER << 5) | (2 << 3) | (v >>> 24);
      b.writeUIntBE(v & 0xffffff, p, 3);
      p += 3;
    } else {
      b[p++] = (T_POINTER << 5) | (3 << 3);
      b.writeUInt32BE(offset, p);
      p += 4;
    }
    this.#len = p;
  }

  #writeCtrl(type: number, size: number): void {
    if (size > MAX_SIZE) throw new RangeError(`mmdb value too large: ${size} (max ${MAX_SIZE})`);
    this.#ensure(6);
    const b = this.#buf;
    let p = this.#len;
    const head = type <= 7 ? type << 5 : 0;
    let sizeBytes = 0;
    let rest = 0;
    let bits: number;
    if (size < 29) bits = size;
    else if (size < 285) [bits, sizeBytes, rest] = [29, 1, size - 29];
    else if (size < 65_821) [bits, sizeBytes, rest] = [30, 2, size - 285];
    else [bits, sizeBytes, rest] = [31, 3, size - 65_821];
    b[p++] = head | bits;
    if (type > 7) b[p++] = type - 7;
    if (sizeBytes > 0) {
      b.writeUIntBE(rest, p, sizeBytes);
      p += sizeBytes;
    }
    this.#len = p;
  }

  #writeUint(type: number, value: number | bigint, maxBytes: number): void {
    let big = BigInt(value);
    if (big < 0n || big >> BigInt(maxBytes * 8) !== 0n) throw new RangeError(`value ${value} does not fit the mmdb type`);
    const bytes: number[] = [];
    while (big > 0n) {
      bytes.unshift(Number(big & 0xffn));
      big >>= 8n;
    }
    this.#writeCtrl(type, bytes.length);
    this.#ensure(bytes.length);
    for (const x of bytes) this.#buf[this.#len++] = x;
  }

  #writeSmallUint(type: number, value: number): void {
    const n = value === 0 ? 0 : value < 0x100 ? 1 : value < 0x10000 ? 2 : value < 0x1000000 ? 3 : 4;
    this.#writeCtrl(type, n);
    this.#ensure(n);
    if (n > 0) this.#buf.writeUIntBE(value, this.#len, n);
    this.#len += n;
  }

  #writeInt32(value: number): void {
    if (!Number.isInteger(value) || value < -0x80000000 || value > 0x7fffffff) throw new RangeError(`value ${value} is not an int32`);
    if (value >= 0 && value < 0x1000000) {
      // Readers take fewer than 4 bytes as unsigned, so only non-negatives may be shortened.
      this.#writeSmallUint(T_INT32, value);
      return;
    }
    this.#writeCtrl(T_INT32, 4);
    this.#ensure(4);
    this.#buf.writeInt32BE(value, this.#len);
    this.#len += 4;
  }

  #writeDouble(value: number): void {
    this.#writeCtrl(T_DOUBLE, 8);
    this.#ensure(8);
    this.#buf.writeDoubleBE(value, this.#len);
    this.#len += 8;
  }

  #writeNumber(value: number): void {
    if (Number.isInteger(value)) {
      if (value >= 0 && value <= 0xffff) return this.#writeSmallUint(T_UINT16, value);
      if (value >= 0 && value <= 0xffffffff) return this.#writeSmallUint(T_UINT32, value);
      if (value > 0 && value <= Number.MAX_SAFE_INTEGER) return this.#writeUint(T_UINT64, value, 8);
      if (value < 0 && value >= -0x80000000) return this.#writeInt32(value);
    }
    this.#writeDouble(value);
  }

  #writeTyped(v: MmdbTyped): void {
    const n = Number(v.value);
    switch (v.type) {
      case 'double':
        return this.#writeDouble(n);
      case 'float':
        this.#writeCtrl(T_FLOAT, 4);
        this.#ensure(4);
        this.#buf.writeFloatBE(n, this.#len);
        this.#len += 4;
        return;
      case 'int32':
        return this.#writeInt32(n);
      case 'uint16':
        if (!Number.isInteger(n) || n < 0 || n > 0xffff) throw new RangeError(`value ${n} is not a uint16`);
        return this.#writeSmallUint(T_UINT16, n);
      case 'uint32':
        if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new RangeError(`value ${n} is not a uint32`);
        return this.#writeSmallUint(T_UINT32, n);
      case 'uint64':
        return this.#writeUint(T_UINT64, v.value, 8);
      case 'uint128':
        return this.#writeUint(T_UINT128, v.value, 16);
    }
  }

  #writeString(value: string): void {
    const size = Buffer.byteLength(value, 'utf8');
    this.#writeCtrl(T_STRING, size);
    this.#ensure(size);
    this.#len += this.#buf.write(value, this.#len, 'utf8');
  }

  #writeInline(value: MmdbValue): void {
    switch (typeof value) {
      case 'string':
        return this.#writeString(value);
      case 'number':
        return this.#writeNumber(value);
      case 'bigint':
        return value < 1n << 64n ? this.#writeUint(T_UINT64, value, 8) : this.#writeUint(T_UINT128, value, 16);
      case 'boolean':
        return this.#writeCtrl(T_BOOLEAN, value ? 1 : 0);
    }
    if (value instanceof MmdbTyped) return this.#writeTyped(value);
    if (Array.isArray(value)) {
      const items = value as readonly MmdbValue[];
      this.#writeCtrl(T_ARRAY, items.length);
      for (const item of items) this.#writeValue(item);
      return;
    }
    if (typeof value !== 'object' || value === null) throw new TypeError(`cannot store ${String(value)} in an mmdb`);
    const entries = Object.entries(value as MmdbMap).filter((e): e is [string, MmdbValue] => e[1] !== undefined && e[1] !== null);
    this.#writeCtrl(T_MAP, entries.length);
    for (const [k, v] of entries) {
      this.#writeValue(k);
      this.#writeValue(v);
    }
  }
}
