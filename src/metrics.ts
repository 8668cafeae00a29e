/**
 * Counters for `/metrics`, rendered in the Prometheus text exposition format.
 *
 * @module
 */

import { ERROR_CODES, type ErrorCode } from "./protocol.ts";
import type { RegistryStats } from "./registry.ts";

/** Why a connection closed, as a metrics label. */
export type CloseReason =
  | "normal"
  | "going_away"
  | "message_too_big"
  | "policy_violation"
  | "slow_consumer"
  | "abnormal"
  | "other";

const CLOSE_REASONS: readonly CloseReason[] = [
  "normal",
  "going_away",
  "message_too_big",
  "policy_violation",
  "slow_consumer",
  "abnormal",
  "other",
];

/** The label for a WebSocket close code. */
export function closeReasonOf(code: number): CloseReason {
  switch (code) {
    case 1000:
    // A clean closing handshake whose close frame carried no code (a browser's
    // plain `ws.close()`): normal, not a vanished peer.
    case 1005:
      return "normal";
    case 1001:
      return "going_away";
    case 1008:
      return "policy_violation";
    case 1009:
      return "message_too_big";
    case 1013:
      return "slow_consumer";
    case 0:
    case 1006:
      return "abnormal";
    default:
      return "other";
  }
}

/** Counters that only grow; plain fields, because they sit on the hot path. */
export class Metrics {
  framesIn = 0;
  framesOut = 0;
  /** Sizes of incoming messages: UTF-16 units for text, bytes for binary. */
  bytesIn = 0;
  /** Sizes of outgoing frames, measured as for `bytesIn`. */
  bytesOut = 0;
  /** Server messages and relayed frames handed to a connection. */
  deliveries = 0;
  /** Messages not delivered: to a connection already closed or evicted as a slow consumer. */
  drops = 0;
  connectionsOpened = 0;
  upgradesRefused = 0;
  readonly errors = new Map<ErrorCode, number>(ERROR_CODES.map((code) => [code, 0]));
  readonly closes = new Map<CloseReason, number>(CLOSE_REASONS.map((reason) => [reason, 0]));

  /** Counts one `error` frame sent. */
  countError(code: ErrorCode): void {
    this.errors.set(code, (this.errors.get(code) ?? 0) + 1);
  }

  /** Counts one closed connection. */
  countClose(code: number): void {
    const reason = closeReasonOf(code);
    this.closes.set(reason, (this.closes.get(reason) ?? 0) + 1);
  }

  /** The exposition text, with the registry's current gauges. */
  render(stats: RegistryStats): string {
    const families: [name: string, type: string, help: string, samples: [string, number][]][] = [
      ["connections", "gauge", "Open WebSocket connections.", [["", stats.connections]]],
      ["users", "gauge", "Identified users with a connection.", [["", stats.users]]],
      ["groups", "gauge", "Groups that exist now.", [["", stats.groups]]],
      ["connections_opened_total", "counter", "WebSocket connections accepted.", [[
        "",
        this.connectionsOpened,
      ]]],
      ["upgrades_refused_total", "counter", "Upgrades refused (origin, limits).", [[
        "",
        this.upgradesRefused,
      ]]],
      ["frames_in_total", "counter", "Frames received.", [["", this.framesIn]]],
      ["frames_out_total", "counter", "Frames sent; a batch counts once.", [["", this.framesOut]]],
      ["bytes_in_total", "counter", "Received (text in UTF-16 units).", [["", this.bytesIn]]],
      ["bytes_out_total", "counter", "Sent (text in UTF-16 units).", [["", this.bytesOut]]],
      ["deliveries_total", "counter", "Messages handed to a connection.", [["", this.deliveries]]],
      ["drops_total", "counter", "Messages not delivered (closed or evicted reader).", [[
        "",
        this.drops,
      ]]],
      ["errors_total", "counter", "Error frames sent, by code.", labelled("code", this.errors)],
      [
        "closes_total",
        "counter",
        "Connections closed, by reason.",
        labelled("reason", this.closes),
      ],
    ];
    const lines: string[] = [];
    for (const [name, type, help, samples] of families) {
      lines.push(`# HELP switchboard_${name} ${help}`, `# TYPE switchboard_${name} ${type}`);
      for (const [labels, value] of samples) lines.push(`switchboard_${name}${labels} ${value}`);
    }
    return lines.join("\n") + "\n";
  }
}

function labelled(label: string, counts: Map<string, number>): [string, number][] {
  return [...counts].map(([value, count]) => [`{${label}="${value}"}`, count]);
}
