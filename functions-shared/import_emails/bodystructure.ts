/**
 * Attachment metadata from IMAP BODYSTRUCTURE: complete even when the message
 * source itself was cut at the byte bound, and it never downloads content.
 */
import { safeLine } from "../safe_text.ts";

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

/** An attachment is a leaf part marked as one, or any leaf part with a file name. */
function isAttachment(node: BodyStructureNode): boolean {
  if (node.disposition?.toLowerCase() === "attachment") return true;
  return Boolean(node.dispositionParameters?.filename || node.parameters?.name);
}

export function attachmentsFrom(root: BodyStructureNode | undefined): Attachment[] {
  const found: Attachment[] = [];
  const visit = (node: BodyStructureNode, depth: number) => {
    if (found.length >= MAX_ATTACHMENTS || depth > 20) return;
    // An attached email is one attachment (original.eml), not its inner parts.
    const attachedMessage = node.type?.toLowerCase() === "message/rfc822" && depth > 0;
    if (node.childNodes?.length && !attachedMessage) {
      for (const child of node.childNodes) visit(child, depth + 1);
      return;
    }
    if (!attachedMessage && !isAttachment(node)) return;
    const filename = node.dispositionParameters?.filename ?? node.parameters?.name ?? null;
    found.push({
      filename: filename ? safeLine(filename, 500) : null,
      content_type: safeLine((node.type ?? "application/octet-stream").toLowerCase(), 200),
      size: typeof node.size === "number" ? node.size : null,
      part: node.part ?? null,
    });
  };
  if (root) visit(root, 0);
  return found;
}
