/**
 * The parse worker: reads and parses the files the main thread names, one at a time, and posts
 * parsed chunks back. It never runs more than its credits ahead of the writer (each chunk taken
 * returns one), so a fast parser and a slow database still hold only a few chunks in memory.
 */
import { parentPort } from 'node:worker_threads';
import { errorMessage } from '../errors.js';
import { fileChunks, type FileJob } from './parse-source.js';

type ToWorker =
  | { type: 'job'; id: number; job: FileJob; credits: number }
  | { type: 'credit'; id: number }
  | { type: 'cancel'; id: number };

const port = parentPort!;
/** Jobs under way: one per file the main thread is loading (two at once on PostgreSQL). */
const jobs = new Map<number, { credits: number; cancelled: boolean; wake: (() => void) | null }>();

async function run(id: number, job: FileJob, credits: number): Promise<void> {
  const state = { credits, cancelled: false, wake: null as (() => void) | null };
  jobs.set(id, state);
  try {
    const it = fileChunks(job);
    for (;;) {
      while (state.credits === 0 && !state.cancelled) await new Promise<void>((r) => (state.wake = r));
      if (state.cancelled) { await it.return({ completed: false, shrunk: false, error: null }); return; }
      const r = await it.next();
      if (r.done) { port.postMessage({ type: 'end', id, end: r.value }); return; }
      state.credits--;
      port.postMessage({ type: 'chunk', id, chunk: r.value });
    }
  } catch (err) {
    port.postMessage({ type: 'failed', id, message: errorMessage(err) });
  } finally {
    jobs.delete(id);
  }
}

port.on('message', (m: ToWorker) => {
  if (m.type === 'job') { void run(m.id, m.job, m.credits); return; }
  const state = jobs.get(m.id);
  if (state === undefined) return;
  if (m.type === 'credit') state.credits++;
  else state.cancelled = true;
  const w = state.wake;
  state.wake = null;
  w?.();
});
