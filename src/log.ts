/**
 * A leveled logger writing one line per event to stderr.
 *
 * @module
 */

import type { LogLevel } from "./config.ts";

/** Writes log lines at or above its level. */
export interface Logger {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

const RANK: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3, silent: 4 };

/** A logger that drops lines below `level`. */
export function createLogger(level: LogLevel): Logger {
  const line = (at: Exclude<LogLevel, "silent">) => (message: string): void => {
    if (RANK[at] >= RANK[level]) console.error(`${new Date().toISOString()} ${at} ${message}`);
  };
  return { debug: line("debug"), info: line("info"), warn: line("warn"), error: line("error") };
}
