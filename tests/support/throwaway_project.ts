/**
 * A throwaway project folder for tests that start their own gateway: a root
 * deno.json, supabase/config.toml, supabase/functions/<name>/... and the project's
 * keys (project.json), like a fresh clone of a user's repository.
 */
import { createProject, type StackProject } from "../../local-stack/project.ts";

export interface ThrowawayProject {
  root: string;
  project: StackProject;
  /** The gateway arguments that serve this folder's functions. */
  gatewayArgs: string[];
}

export async function throwawayProject(
  files: Record<string, string>,
  options: { envFile?: string } = {},
): Promise<ThrowawayProject> {
  const root = Deno.makeTempDirSync({ prefix: "project-" });
  const all: Record<string, string> = { "supabase/config.toml": "", ...files };
  if (options.envFile !== undefined) all["functions.env"] = options.envFile;
  for (const [path, content] of Object.entries(all)) {
    Deno.mkdirSync(`${root}/${path.slice(0, path.lastIndexOf("/"))}`, { recursive: true });
    Deno.writeTextFileSync(`${root}/${path}`, content);
  }
  Deno.mkdirSync(`${root}/supabase/functions`, { recursive: true });
  const project = await createProject();
  Deno.writeTextFileSync(`${root}/project.json`, JSON.stringify(project));
  return {
    root,
    project,
    gatewayArgs: [
      "--config",
      `${root}/supabase/config.toml`,
      "--functions-dir",
      `${root}/supabase/functions`,
      "--project",
      `${root}/project.json`,
      ...(options.envFile !== undefined ? ["--env-file", `${root}/functions.env`] : []),
    ],
  };
}
