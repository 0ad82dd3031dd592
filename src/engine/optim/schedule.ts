// Learning-rate schedules: pure functions step → lr, so they are trivially resumable.

export interface WarmupCosineOptions {
  /** The lr reached at the end of warmup. */
  peakLr: number;
  /** Steps of linear warmup from 0 to peakLr (0 = start at peakLr). */
  warmupSteps: number;
  /** Step at which the cosine reaches minLr; must exceed warmupSteps. */
  totalSteps: number;
  /** Final lr, held constant from totalSteps on (default 0). */
  minLr?: number;
}

/**
 * lr(step): peakLr·step/warmupSteps for step < warmupSteps; then
 * minLr + ½(peakLr − minLr)(1 + cos(π·(step − warmupSteps)/(totalSteps − warmupSteps))) up to totalSteps;
 * minLr afterwards. `step` counts from 0 (the first update).
 */
export function warmupCosine(opts: WarmupCosineOptions): (step: number) => number {
  const { peakLr, warmupSteps, totalSteps } = opts;
  const minLr = opts.minLr ?? 0;
  if (typeof peakLr !== 'number' || !Number.isFinite(peakLr) || peakLr < 0) throw new RangeError(`warmupCosine: peakLr must be a finite number ≥ 0, got ${String(peakLr)}`);
  if (typeof minLr !== 'number' || !Number.isFinite(minLr) || minLr < 0 || minLr > peakLr) throw new RangeError(`warmupCosine: minLr must be in [0, peakLr=${peakLr}], got ${String(minLr)}`);
  if (!Number.isInteger(warmupSteps) || warmupSteps < 0) throw new RangeError(`warmupCosine: warmupSteps must be an integer ≥ 0, got ${String(warmupSteps)}`);
  if (!Number.isInteger(totalSteps) || totalSteps <= warmupSteps) throw new RangeError(`warmupCosine: totalSteps must be an integer > warmupSteps=${warmupSteps}, got ${String(totalSteps)}`);
  const decaySteps = totalSteps - warmupSteps;
  return (step: number): number => {
    if (typeof step !== 'number' || !Number.isFinite(step) || step < 0) throw new RangeError(`warmupCosine: step must be a finite number ≥ 0, got ${String(step)}`);
    if (step < warmupSteps) return (peakLr * step) / warmupSteps;
    if (step >= totalSteps) return minLr;
    const progress = (step - warmupSteps) / decaySteps; // in [0, 1)
    return minLr + 0.5 * (peakLr - minLr) * (1 + Math.cos(Math.PI * progress));
  };
}
