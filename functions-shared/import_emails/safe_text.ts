/**
 * The one home for making outside text safe to store and to print. Mail headers,
 * server answers and error texts are hostile input: Postgres text and jsonb refuse
 * NUL and lone surrogates, and terminal control characters (ESC, BEL...) in a
 * stored error would be replayed by whoever prints it.
 */

/** No NUL, cut to `maxChars`, then made well-formed (a cut must not split a pair). */
export function safeText(value: string, maxChars: number): string {
  return value.replaceAll("\u0000", "").slice(0, maxChars).toWellFormed();
}

// C0 controls, DEL and C1 controls (CSI 0x9b starts escape sequences too); NUL is
// already gone.
// deno-lint-ignore no-control-regex
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f]/g;

/**
 * One line of text for an error or a header field: as safeText, and every other
 * control character, line breaks and tabs included, becomes a space.
 */
export function safeLine(value: string, maxChars: number): string {
  return safeText(value, maxChars).replace(CONTROL_CHARACTERS, " ");
}
