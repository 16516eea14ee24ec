// import-emails: a signed-in user's "sync now" (the cron path calls the same runner in-process).
// All logic lives in functions-shared/; this file only wires it up.
import { createImportEmailsHandler } from "../../../functions-shared/import_emails/handler.ts";

export default createImportEmailsHandler(Deno.env.toObject());
