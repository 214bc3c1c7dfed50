/** Learning rate at `step` (0-based): linear warm-up to `peak`, then cosine decay to `peak · finalFraction`. */
export function learningRateAt(
  step: number,
  {
    peak,
    warmupSteps,
    totalSteps,
    finalFraction,
  }: { peak: number; warmupSteps: number; totalSteps: number; finalFraction: number },
): number {
  if (step < warmupSteps) return (peak * (step + 1)) / warmupSteps;
  const decaySteps = Math.max(1, totalSteps - warmupSteps);
  const progress = Math.min(1, (step - warmupSteps) / decaySteps);
  const floor = peak * finalFraction;
  return floor + (peak - floor) * 0.5 * (1 + Math.cos(Math.PI * progress));
}
