/**
 * The Socket.IO event maps of docs/protocol.md, "Requests", "Deliveries", shared by the gateway,
 * workers, the client SDK and the tests.
 */
import type { ErrorBody } from "./error-codes.js";
import type {
  ControlRequest,
  LogFilter,
  Priority,
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
}

export interface ServerToClientEvents {
  welcome: (w: Welcome) => void;
  event: (e: ChannelEvent) => void;
  lag: (l: Lag) => void;
  unsubscribed: (u: Unsubscribed) => void;
  closing: (c: Closing) => void;
  failure: (f: FailureEvent) => void;
}

export type RequestEvent = keyof ClientToServerEvents;
export const REQUEST_EVENTS: readonly RequestEvent[] = ["subscribe", "unsubscribe", "publish", "control", "refresh"];

/** Between replicas (socket.io serverSideEmit). */
export interface InterServerEvents {
  /** Disconnect this user's connections here; answers how many. */
  kick: (userId: string, ack: (disconnected: number) => void) => void;
}
