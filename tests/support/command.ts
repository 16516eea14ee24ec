/** Runs a command to its end: its exit code and everything it printed (stdout, then stderr). */
export async function runCommand(
  command: string,
  options: Omit<Deno.CommandOptions, "stdout" | "stderr">,
): Promise<{ code: number; text: string }> {
  const output = await new Deno.Command(command, { ...options, stdout: "piped", stderr: "piped" })
    .output();
  const decoder = new TextDecoder();
  return { code: output.code, text: decoder.decode(output.stdout) + decoder.decode(output.stderr) };
}
