// The password generator's options, remembered on this device (the
// webview's local storage, which never leaves it): characters (length and
// kinds) or a passphrase (words and separator).

import type { PasswordRulesDto } from "./bindings";

export type GeneratorOptions = {
  mode: "characters" | "passphrase";
  length: number;
  lowercase: boolean;
  uppercase: boolean;
  digits: boolean;
  symbols: boolean;
  avoidAmbiguous: boolean;
  words: number;
  separator: string;
};

export const DEFAULT_GENERATOR: GeneratorOptions = {
  mode: "characters",
  length: 20,
  lowercase: true,
  uppercase: true,
  digits: true,
  symbols: true,
  avoidAmbiguous: false,
  words: 5,
  separator: "-",
};

export const LENGTH_RANGE = [8, 128] as const;
export const WORDS_RANGE = [3, 20] as const;
const KEY = "polykey.generator";

const clamp = (n: unknown, [low, high]: readonly [number, number], fallback: number) =>
  typeof n === "number" && Number.isFinite(n) ? Math.min(high, Math.max(low, Math.round(n))) : fallback;

/** `raw` as options: every field checked, anything odd back to its default. */
export function sanitize(raw: unknown): GeneratorOptions {
  const o = (raw && typeof raw === "object" ? raw : {}) as Partial<Record<keyof GeneratorOptions, unknown>>;
  const flag = (key: "lowercase" | "uppercase" | "digits" | "symbols" | "avoidAmbiguous") =>
    typeof o[key] === "boolean" ? (o[key] as boolean) : DEFAULT_GENERATOR[key];
  const options: GeneratorOptions = {
    mode: o.mode === "passphrase" ? "passphrase" : "characters",
    length: clamp(o.length, LENGTH_RANGE, DEFAULT_GENERATOR.length),
    lowercase: flag("lowercase"),
    uppercase: flag("uppercase"),
    digits: flag("digits"),
    symbols: flag("symbols"),
    avoidAmbiguous: flag("avoidAmbiguous"),
    words: clamp(o.words, WORDS_RANGE, DEFAULT_GENERATOR.words),
    separator:
      typeof o.separator === "string" && o.separator.length <= 3 && !/[\u0000-\u001f\u007f]/.test(o.separator)
        ? o.separator
        : DEFAULT_GENERATOR.separator,
  };
  if (!options.lowercase && !options.uppercase && !options.digits && !options.symbols) options.lowercase = true;
  return options;
}

export function loadGenerator(storage: Storage | undefined = globalThis.localStorage): GeneratorOptions {
  try {
    return sanitize(JSON.parse(storage?.getItem(KEY) ?? "null"));
  } catch {
    return { ...DEFAULT_GENERATOR };
  }
}

export function saveGenerator(options: GeneratorOptions, storage: Storage | undefined = globalThis.localStorage) {
  try {
    storage?.setItem(KEY, JSON.stringify(sanitize(options)));
  } catch {
    // Storage full or refused: the options last this session only.
  }
}

export function rulesOf(options: GeneratorOptions): PasswordRulesDto {
  return {
    length: options.length,
    lowercase: options.lowercase,
    uppercase: options.uppercase,
    digits: options.digits,
    symbols: options.symbols,
    avoidAmbiguous: options.avoidAmbiguous,
  };
}
