/**
 * The outer optimizer of Local-SGD: SGD with Nesterov momentum on the averaged
 * pseudo-gradient Δ = θ_start − θ_local (DiLoCo's defaults: lr 0.7, momentum 0.9). Plain
 * typed-array arithmetic in a fixed order, so every replica that holds the same θ_start,
 * momentum and Δ computes bit-identical parameters.
 */
export type NamedArrays = Map<string, Float32Array>;

export interface OuterSettings {
  learningRate: number;
  momentum: number;
}

export class OuterOptimizer {
  constructor(
    readonly settings: OuterSettings,
    /** Momentum buffers by parameter name; empty until the first step. */
    public momentum: NamedArrays = new Map(),
  ) {}

  /**
   * θ_next = θ_start − lr·(Δ + μ·m) with m ← μ·m + Δ (PyTorch's Nesterov SGD). Returns new
   * arrays: θ_start and Δ are left as they are, so a snapshot handed to a peer stays valid.
   */
  step(start: NamedArrays, delta: NamedArrays): NamedArrays {
    const { learningRate, momentum: mu } = this.settings;
    const next: NamedArrays = new Map();
    const buffers: NamedArrays = new Map();
    for (const [name, theta] of start) {
      const d = delta.get(name);
      if (!d || d.length !== theta.length) throw new Error(`The pseudo-gradient has no matching ${name}.`);
      const previous = this.momentum.get(name);
      const m = new Float32Array(theta.length);
      const out = new Float32Array(theta.length);
      for (let i = 0; i < theta.length; i++) {
        m[i] = mu * (previous ? previous[i] : 0) + d[i];
        out[i] = theta[i] - learningRate * (d[i] + mu * m[i]);
      }
      buffers.set(name, m);
      next.set(name, out);
    }
    this.momentum = buffers;
    return next;
  }
}
