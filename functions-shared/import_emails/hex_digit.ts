/**
 * The value of one ASCII hex digit (0-9, A-F, a-f) given as a char code, or -1: the
 * `=XX` of quoted-printable bodies (mime_text.ts) and of Q encoded-words
 * (encoded_words.ts).
 */
export const hexDigitValue = (c: number): number =>
  c >= 0x30 && c <= 0x39
    ? c - 0x30
    : c >= 0x41 && c <= 0x46
    ? c - 0x37
    : c >= 0x61 && c <= 0x66
    ? c - 0x57
    : -1;
