import { describe, expect, it } from "vitest";
import { pickPositions, wordsMatch } from "../src/lib/recoveryCheck";

describe("recovery code confirmation", () => {
  it("picks distinct, sorted positions within range", () => {
    for (let i = 0; i < 50; i++) {
      const positions = pickPositions(24);
      expect(new Set(positions).size).toBe(3);
      expect([...positions].sort((a, b) => a - b)).toEqual(positions);
      expect(positions.every((p) => p >= 0 && p < 24)).toBe(true);
    }
  });

  it("accepts the right words whatever their case and spacing, and nothing else", () => {
    const words = ["alpha", "bravo", "charlie", "delta"];
    expect(wordsMatch(words, [0, 2], [" Alpha", "charlie "])).toBe(true);
    expect(wordsMatch(words, [0, 2], ["alpha", "bravo"])).toBe(false);
    expect(wordsMatch(words, [0, 2], ["alpha"])).toBe(false);
  });
});
