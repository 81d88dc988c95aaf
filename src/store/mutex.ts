/** Serialises async critical sections within this process. */
export class Mutex {
  #tail: Promise<void> = Promise.resolve();

  /** Resolves when the caller holds the lock; call the returned function to release it. */
  async lock(): Promise<() => void> {
    let release!: () => void;
    const next = new Promise<void>((r) => (release = r));
    const prev = this.#tail;
    this.#tail = prev.then(() => next);
    await prev;
    return release;
  }
}
