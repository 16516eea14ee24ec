// cron-auto-sync: verifies pg_cron's signed requests and hands the import off in-process.
// All logic lives in functions-shared/; this file only wires it up.
import { createCronAutoSyncHandler } from "../../../functions-shared/cron_auto_sync/handler.ts";

export default createCronAutoSyncHandler(Deno.env.toObject());
