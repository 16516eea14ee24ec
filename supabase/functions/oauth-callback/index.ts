// oauth-callback: the redirect URI registered at the providers (GET, from the browser).
// All logic lives in functions-shared/oauth_connect/; this file only wires it up.
import { createOAuthConnectHandler } from "../../../functions-shared/oauth_connect/handler.ts";

export default createOAuthConnectHandler("oauth-callback", Deno.env.toObject());
