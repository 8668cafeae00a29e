/**
 * Switchboard's command line: `deno task start [flags]`.
 *
 * Parses flags (with environment fallbacks), starts the server, and on SIGINT
 * or SIGTERM closes every connection with 1001 and exits 0.
 *
 * @module
 */

import { ConfigError, helpText, parseCommandLine } from "./src/config.ts";
import { startServer } from "./src/server.ts";

/** The version printed by `--version`. */
export const VERSION = "0.1.0";

async function main(args: string[]): Promise<number> {
  let commandLine;
  try {
    commandLine = parseCommandLine(args, (name) => Deno.env.get(name));
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(`switchboard: ${error.message}`);
    return 2;
  }
  if (commandLine.kind === "help") {
    console.log(helpText());
    return 0;
  }
  if (commandLine.kind === "version") {
    console.log(`switchboard ${VERSION}`);
    return 0;
  }
  const server = await startServer(commandLine.options);
  const stop = () => void server.shutdown();
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
  await server.finished;
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
