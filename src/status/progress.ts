import cliProgress from 'cli-progress';

/** A progress bar on a terminal, nothing otherwise (logs and pipes stay clean). */
export interface ProgressBar {
  update(value: number, payload?: Record<string, string | number>): void;
  setTotal(total: number): void;
  stop(): void;
}

const noop: ProgressBar = { update() {}, setTotal() {}, stop() {} };

export function progressBar(opts: { enabled: boolean; total: number; format: string }): ProgressBar {
  if (!opts.enabled || !process.stderr.isTTY) return noop;
  const bar = new cliProgress.SingleBar(
    { format: opts.format, stream: process.stderr, hideCursor: true, clearOnComplete: true, etaBuffer: 50, fps: 5 },
    cliProgress.Presets.shades_classic,
  );
  bar.start(Math.max(opts.total, 1), 0, {});
  return {
    update: (v, p) => bar.update(v, p),
    setTotal: (t) => bar.setTotal(Math.max(t, 1)),
    stop: () => bar.stop(),
  };
}
