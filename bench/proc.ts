/**
 * Reading a process's CPU time and resident memory from /proc (Linux only).
 *
 * Deno 2.9 refuses to read /proc/<pid>/* without --allow-all ("Requires all access"),
 * so the files are read by a `cat` child instead: that needs only --allow-run=cat, and
 * costs a few milliseconds, taken outside the measured windows.
 * @module
 */

/** USER_HZ: the unit of utime/stime in /proc/<pid>/stat; 100 on every Linux x86/arm build. */
const TICKS_PER_SECOND = 100;

/** CPU time and RSS of one process at one moment (NaN when unreadable). */
export interface ProcSample {
  /** user + system CPU time in microseconds */
  cpuUs: number;
  /** VmRSS in KiB */
  rssKiB: number;
}

/** Samples CPU time and RSS of process `pid`. */
export async function sampleProcess(pid: number): Promise<ProcSample> {
  if (!(pid > 0)) return { cpuUs: NaN, rssKiB: NaN };
  try {
    const out = await new Deno.Command("cat", {
      args: [`/proc/${pid}/stat`, `/proc/${pid}/status`],
      stdout: "piped",
      stderr: "null",
    }).output();
    if (!out.success) return { cpuUs: NaN, rssKiB: NaN };
    return parseProc(new TextDecoder().decode(out.stdout));
  } catch {
    return { cpuUs: NaN, rssKiB: NaN };
  }
}

/** Parses /proc/<pid>/stat followed by /proc/<pid>/status. */
export function parseProc(text: string): ProcSample {
  const nl = text.indexOf("\n");
  const stat = text.slice(0, nl);
  // The command name may hold spaces and parentheses: fields start after the last ")".
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const cpuUs = (Number(fields[11]) + Number(fields[12])) * (1e6 / TICKS_PER_SECOND);
  const m = /^VmRSS:\s+(\d+) kB/m.exec(text.slice(nl + 1));
  return { cpuUs, rssKiB: m ? Number(m[1]) : NaN };
}
