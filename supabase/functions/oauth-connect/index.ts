// oauth-connect: a signed-in user starts connecting an OAuth mailbox (POST) and finishes it
// (POST /finish). All logic lives in functions-shared/oauth_connect/; this file only wires it up.
import { createOAuthConnectHandler } from "../../../functions-shared/oauth_connect/handler.ts";

export default createOAuthConnectHandler("oauth-connect", Deno.env.toObject());
