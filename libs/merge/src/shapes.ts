/** Named parameters (name → values) and the check that models share one shape before merging. */

export type NamedArrays = Map<string, Float32Array>;

/** Checks that every expert has exactly the base's parameters, names and sizes. */
export function checkShapes(base: NamedArrays, experts: NamedArrays[]): void {
  if (experts.length === 0) throw new Error('A merge needs at least one expert.');
  experts.forEach((expert, index) => {
    if (expert.size !== base.size) {
      throw new Error(
        `Expert ${index} has ${expert.size} parameters and the base ${base.size}; they do not share a shape.`,
      );
    }
    for (const [name, values] of base) {
      const other = expert.get(name);
      if (!other)
        throw new Error(`Expert ${index} has no parameter "${name}"; only models of one shape can be merged.`);
      if (other.length !== values.length) {
        throw new Error(
          `Parameter "${name}" has ${other.length} values in expert ${index} but ${values.length} in the base.`,
        );
      }
    }
  });
}
