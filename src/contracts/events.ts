/**
 * The Socket.IO event maps of docs/protocol.md, "Requests", "Deliveries", shared by the gateway,
 * workers, the client SDK and the tests.
 */
import type { ErrorBody } from "./error-codes.js";
import type {
  ControlRequest,
  LogFilter,
  Priority,
  PresenceRequest,
  PublishRequest,
  RefreshRequest,
  SubscribeRequest,
  UnsubscribeRequest,
} from "./schemas.js";

/** One delivery: `event`. */
export interface ChannelEvent<T = unknown> {
  channel: string;
  offset: number;
  epoch: string;
  id: string;
  type: string;
  ts: number;
  priority: Priority;
  data: T;
}

export type Failure = { ok: false; error: ErrorBody };
export type Answer<T> = ({ ok: true } & T) | Failure;

export interface SubscribeOk {
  channel: string;
  offset: number;
  epoch: string;
  recovered: boolean;
  events: ChannelEvent[];
  snapshot?: unknown;
}
export interface UnsubscribeOk {
  channel: string;
}
export interface PublishOk {
  channel: string;
  offset: number;
  epoch: string;
}
export interface ControlOk {
  channel: string;
  action: ControlRequest["action"];
  paused: boolean;
  /** The subscription's filter now (none: every line). */
  filter?: LogFilter;
}
export interface RefreshOk {
  exp: number;
}

/** The token's optional `name` and `avatar` claims. */
export interface MemberInfo {
  name?: string;
  avatar?: string;
}

/** One user on a channel, however many connections (tabs, devices, replicas) it has there. */
export interface PresenceMember {
  user: string;
  connections: number;
  /** When the user's first connection joined (ms since epoch). */
  joinedAt: number;
  info?: MemberInfo;
}

/**
 * `presence`: the members, deduplicated by user, and `count` of them; above presenceMaxMembers
 * users, `members` is left out (never a partial list).
 */
export interface PresenceOk {
  channel: string;
  members?: PresenceMember[];
  count: number;
  connections: number;
}

export interface PresenceStatsOk {
  channel: string;
  users: number;
  connections: number;
}

/** Delivered on namespaces with joinLeave: a user's first connection came, or its last one went. Not in history, no offset. */
export interface PresenceEvent {
  channel: string;
  action: "join" | "leave";
  user: string;
  info?: MemberInfo;
}

export interface Limits {
  maxSubscriptions: number;
  rateLimit: number;
  rateBurst: number;
  maxMessageBytes: number;
  pingIntervalMs: number;
  pingTimeoutMs: number;
}

export interface Welcome {
  sessionId: string;
  node: string;
  serverTime: number;
  limits: Limits;
}

export interface Closing {
  code: number;
  reason: string;
  retryAfterMs: number;
}
export interface Unsubscribed {
  channel: string;
  code: number;
  reason: string;
}
export interface Lag {
  channel: string;
  skipped: number;
  offset: number;
}
export interface FailureEvent {
  event: string;
  channel?: string;
  error: ErrorBody;
}

type Ack<T> = (answer: Answer<T>) => void;

export interface ClientToServerEvents {
  subscribe: (req: SubscribeRequest, ack?: Ack<SubscribeOk>) => void;
  unsubscribe: (req: UnsubscribeRequest, ack?: Ack<UnsubscribeOk>) => void;
  publish: (req: PublishRequest, ack?: Ack<PublishOk>) => void;
  control: (req: ControlRequest, ack?: Ack<ControlOk>) => void;
  refresh: (req: RefreshRequest, ack?: Ack<RefreshOk>) => void;
  presence: (req: PresenceRequest, ack?: Ack<PresenceOk>) => void;
  presence_stats: (req: PresenceRequest, ack?: Ack<PresenceStatsOk>) => void;
}

export interface ServerToClientEvents {
  welcome: (w: Welcome) => void;
  event: (e: ChannelEvent) => void;
  lag: (l: Lag) => void;
  unsubscribed: (u: Unsubscribed) => void;
  closing: (c: Closing) => void;
  failure: (f: FailureEvent) => void;
  presence: (p: PresenceEvent) => void;
}

export type RequestEvent = keyof ClientToServerEvents;
export const REQUEST_EVENTS: readonly RequestEvent[] = [
  "subscribe",
  "unsubscribe",
  "publish",
  "control",
  "refresh",
  "presence",
  "presence_stats",
];

/** Between replicas (socket.io serverSideEmit). */
export interface InterServerEvents {
  /** Disconnect this user's connections here; answers how many. */
  kick: (userId: string, ack: (disconnected: number) => void) => void;
}
