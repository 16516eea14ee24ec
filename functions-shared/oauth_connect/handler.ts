/** Wires oauth-connect / oauth-callback from the environment, parsed once (config.ts). */
import { createUserAuthenticator } from "../import_emails/user_auth.ts";
import { createProviderClients } from "../oauth/provider_clients.ts";
import { oauthConnectConfig } from "../platform/config.ts";
import { connectDatabase } from "../platform/database.ts";
import { createLogger } from "../platform/log.ts";
import { createOAuthConnectApp } from "./app.ts";
import { createConnectStore } from "./connect_store.ts";

export function createOAuthConnectHandler(
  name: "oauth-connect" | "oauth-callback",
  env: Record<string, string | undefined>,
) {
  const log = createLogger(name);
  const config = oauthConnectConfig(env);
  const app = createOAuthConnectApp({
    authenticate: createUserAuthenticator(config.auth, { log }),
    providers: createProviderClients(config.oauth),
    store: createConnectStore(connectDatabase(config.databaseUrl, name)),
    redirectUri: config.redirectUri,
    returnUrls: config.returnUrls,
    log,
  });
  return { fetch: app.fetch };
}
