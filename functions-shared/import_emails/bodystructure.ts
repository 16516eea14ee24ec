/**
 * Attachment metadata from IMAP BODYSTRUCTURE: complete even when the message
 * source itself was cut at the byte bound, and it never downloads content.
 */
import { safeLine } from "./safe_text.ts";

export interface Attachment {
  filename: string | null;
  content_type: string;
  size: number | null;
  part: string | null;
}

/** The shape imapflow gives BODYSTRUCTURE nodes (the fields we read). */
export interface BodyStructureNode {
  part?: string;
  type?: string;
  parameters?: Record<string, string>;
  disposition?: string;
  dispositionParameters?: Record<string, string>;
  size?: number;
  childNodes?: BodyStructureNode[];
}

const MAX_ATTACHMENTS = 200;

/** A field of the server's structure, if it is the string it should be. */
const text = (value: unknown): string | null => typeof value === "string" ? value : null;

/** An attachment is a leaf part marked as one, or any leaf part with a file name. */
function isAttachment(node: BodyStructureNode): boolean {
  if (text(node.disposition)?.toLowerCase() === "attachment") return true;
  return Boolean(fileName(node));
}

function fileName(node: BodyStructureNode): string | null {
  return text(node.dispositionParameters?.filename) ?? text(node.parameters?.name);
}

/**
 * The attachments a BODYSTRUCTURE describes. The structure comes from the server:
 * any field may be missing or of the wrong type, and it never throws for that.
 */
export function attachmentsFrom(root: BodyStructureNode | undefined): Attachment[] {
  const found: Attachment[] = [];
  const visit = (node: BodyStructureNode, depth: number) => {
    if (found.length >= MAX_ATTACHMENTS || depth > 20) return;
    if (typeof node !== "object" || node === null) return;
    const type = text(node.type)?.toLowerCase() ?? null;
    // An attached email is one attachment (original.eml), not its inner parts.
    const attachedMessage = type === "message/rfc822" && depth > 0;
    if (Array.isArray(node.childNodes) && node.childNodes.length > 0 && !attachedMessage) {
      for (const child of node.childNodes) visit(child, depth + 1);
      return;
    }
    if (!attachedMessage && !isAttachment(node)) return;
    const filename = fileName(node);
    found.push({
      filename: filename ? safeLine(filename, 500) : null,
      content_type: safeLine(type ?? "application/octet-stream", 200),
      size: Number.isSafeInteger(node.size) && node.size! >= 0 ? node.size! : null,
      part: text(node.part) ? safeLine(node.part!, 100) : null,
    });
  };
  if (root) visit(root, 0);
  return found;
}
