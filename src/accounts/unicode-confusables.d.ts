/** Types for unicode-confusables (the package ships none). */
declare module 'unicode-confusables' {
  /** Each code point replaced by its prototype in Unicode's confusables table (zero-width ones dropped). */
  export function rectifyConfusion(text: string): string;
}
