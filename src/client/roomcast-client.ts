/**
 * The roomcast client SDK: a thin layer over socket.io-client that does the right thing by
 * default. It tracks each channel's offset and epoch, resubscribes with `since` after every
 * reconnect, delivers each event once and in offset order, hands over the snapshot when
 * history could not fill a gap (`recovered: false`), honours `closing.retryAfterMs`, backs
 * off with jitter, and refreshes the token before it expires. Runs in browsers and Node.
 * On namespaces with presence, it reads who is on a channel and hands over joins and leaves.
 */
import { io, type Socket } from "socket.io-client";
import type {
  Answer,
  ChannelEvent,
  ClientToServerEvents,
  Closing,
  ControlOk,
  Lag,
  PresenceEvent,
  PresenceOk,
  PresenceStatsOk,
  PublishOk,
  ServerToClientEvents,
  SubscribeOk,
  Unsubscribed,
  Welcome,
} from "../contracts/events.js";
import type { LogFilter } from "../contracts/schemas.js";
import { backoffDelay, tokenExpiry, type BackoffOptions } from "./backoff.js";

export interface RoomcastClientOptions {
  /** A gateway URL, or several tried in turn on each reconnect (without a load balancer). */
  url: string | readonly string[];
  /** A token; or use getToken. */
  token?: string;
  /** Called for the first token, before each expiry (refresh) and after a 4401. */
  getToken?: () => string | Promise<string>;
  /** Refresh this long before the token expires (ms). @default 30000 (or a third of its life) */
  refreshBeforeMs?: number;
  backoff?: BackoffOptions;
  /** Transports, in order. @default ["websocket", "polling"] */
  transports?: ("websocket" | "polling")[];
}

export interface SubscribeOptions {
  /** Events from history on the first subscribe. @default 0 */
  history?: number;
  /**
   * History could not fill a gap (epoch changed or too old): reload your state from
   * `snapshot` (where the namespace keeps one) and the last `events`.
   */
  onReset?: (reset: { snapshot: unknown; events: ChannelEvent[]; offset: number; epoch: string }) => void;
  /** Narrows the lines of log events (kept across reconnects; change it with setFilter). */
  filter?: LogFilter;
  /**
   * A user's first connection joined the channel, or its last one left (namespaces with
   * joinLeave). Not replayed after a reconnect: call presence() again then.
   */
  onPresence?: (event: PresenceEvent) => void;
}

export type EventHandler = (event: ChannelEvent) => void;

interface Tracked {
  channel: string;
  handler: EventHandler;
  options: SubscribeOptions;
  /** Last offset delivered to the handler, and its epoch; undefined before the first answer. */
  position?: { offset: number; epoch: string };
  /** A subscribe is in flight: live events wait for its answer. */
  waiting: boolean;
  /** The connection whose server holds this subscription now. */
  subscribedOn?: RoomcastSocket;
  /** Paused by pause(): no delivery until resume(), also across reconnects. */
  paused?: boolean;
  /**
   * Paused, and subscribed again after a reconnect on this connection only to stay a member
   * (presence): what arrives is dropped and `position` stays where the pause left it; resume()
   * subscribes with `since` from there.
   */
  parkedOn?: RoomcastSocket;
  /** The caller of subscribe(), waiting for the first answer. */
  firstAnswer?: { resolve: (ok: SubscribeOk) => void; reject: (err: Error) => void };
}

export interface ClientEvents {
  /** Connected. The subscriptions (paused ones too, still paused) were just sent again: requests made here are answered after them. */
  welcome: (welcome: Welcome) => void;
  lag: (lag: Lag) => void;
  unsubscribed: (notice: Unsubscribed) => void;
  closing: (closing: Closing) => void;
  disconnected: (reason: string) => void;
  /** A refusal the client cannot retry past (for example 4401 without getToken). */
  error: (error: { code?: number; reason?: string; message: string }) => void;
}

type RoomcastSocket = Socket<ServerToClientEvents, ClientToServerEvents>;
type Listener = (...args: never[]) => void;

/** How long a request waits for its answer (a lost connection fails it at once). */
const REQUEST_TIMEOUT_MS = 10_000;

export class RoomcastClient {
  private readonly urls: readonly string[];
  private urlIndex = 0;
  private socket: RoomcastSocket | undefined;
  private token: string | undefined;
  private readonly subscriptions = new Map<string, Tracked>();
  private readonly listeners = new Map<keyof ClientEvents, Set<Listener>>();
  private attempt = 0;
  private retryAfterMs: number | undefined;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private refreshTimer: ReturnType<typeof setTimeout> | undefined;
  private closed = false;

  constructor(private readonly options: RoomcastClientOptions) {
    this.urls = typeof options.url === "string" ? [options.url] : options.url;
    if (this.urls.length === 0) throw new Error("roomcast: url is required");
    if (!options.token && !options.getToken) throw new Error("roomcast: token or getToken is required");
    this.token = options.token;
  }

  /** Connects (and keeps reconnecting until close()). Resolves on the first `welcome`. */
  async connect(): Promise<Welcome> {
    const welcomed = new Promise<Welcome>((resolve) => this.once("welcome", resolve));
    await this.open();
    return welcomed;
  }

  get connected(): boolean {
    return this.socket?.connected ?? false;
  }

  /** The replica's session id while connected. */
  get sessionId(): string | undefined {
    return this.socket?.id;
  }

  on<E extends keyof ClientEvents>(event: E, listener: ClientEvents[E]): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(listener as Listener);
    return () => set.delete(listener as Listener);
  }

  once<E extends keyof ClientEvents>(event: E, listener: ClientEvents[E]): void {
    const off = this.on(event, ((...args: never[]) => {
      off();
      (listener as Listener)(...args);
    }) as ClientEvents[E]);
  }

  /**
   * Subscribes; `handler` gets every event of the channel once, in offset order, across
   * reconnects. Resolves with the first answer (rejects with its error).
   */
  subscribe(channel: string, handler: EventHandler, options: SubscribeOptions = {}): Promise<SubscribeOk> {
    return new Promise((resolve, reject) => {
      const tracked: Tracked = { channel, handler, options, waiting: false, firstAnswer: { resolve, reject } };
      this.subscriptions.set(channel, tracked);
      // Not connected yet: the next `welcome` sends it.
      if (this.socket?.connected) this.sendSubscribe(tracked);
    });
  }

  async unsubscribe(channel: string): Promise<void> {
    if (!this.subscriptions.delete(channel)) return;
    // No answer (the connection dropped) is fine: a new connection does not resubscribe it.
    if (this.socket?.connected)
      await this.socket
        .timeout(REQUEST_TIMEOUT_MS)
        .emitWithAck("unsubscribe", { channel })
        .catch(() => undefined);
  }

  /** Stops delivery on a channel until resume() (also across reconnects). */
  async pause(channel: string): Promise<void> {
    const tracked = this.subscriptions.get(channel);
    if (!tracked) throw new Error(`roomcast: not subscribed to ${channel}`);
    tracked.paused = true;
    if (this.isLive(tracked)) await this.control({ channel, action: "pause" });
  }

  /** Replays what was published while paused (from history), then delivers live again. */
  async resume(channel: string): Promise<void> {
    const tracked = this.subscriptions.get(channel);
    if (!tracked) throw new Error(`roomcast: not subscribed to ${channel}`);
    tracked.paused = false;
    // Parked after a reconnect: a subscribe with `since` replays from where the pause left off.
    if (this.isLive(tracked) && tracked.parkedOn !== this.socket) await this.control({ channel, action: "resume" });
    else this.sendSubscribe(tracked);
  }

  /** Narrows the lines of log events from now on (`{}` or undefined: every line). */
  async setFilter(channel: string, filter: LogFilter | undefined): Promise<void> {
    const tracked = this.subscriptions.get(channel);
    if (!tracked) throw new Error(`roomcast: not subscribed to ${channel}`);
    tracked.options = { ...tracked.options, filter };
    if (this.isLive(tracked)) await this.control({ channel, action: "filter", filter: filter ?? {} });
  }

  private isLive(tracked: Tracked): boolean {
    return this.socket !== undefined && this.socket.connected && tracked.subscribedOn === this.socket;
  }

  private async control(request: Parameters<ClientToServerEvents["control"]>[0]): Promise<ControlOk> {
    return unwrap(await this.socket!.timeout(REQUEST_TIMEOUT_MS).emitWithAck("control", request));
  }

  async publish(channel: string, type: string, data: unknown): Promise<PublishOk> {
    if (!this.socket?.connected) throw new Error("roomcast: not connected");
    return unwrap(await this.socket.timeout(REQUEST_TIMEOUT_MS).emitWithAck("publish", { channel, type, data }));
  }

  /**
   * Who is on the channel (namespaces with presence; the grants of subscribe): its users with
   * their connections, or only the counts above the server's ROOMCAST_PRESENCE_MAX_MEMBERS.
   */
  async presence(channel: string): Promise<PresenceOk> {
    if (!this.socket?.connected) throw new Error("roomcast: not connected");
    return unwrap(await this.socket.timeout(REQUEST_TIMEOUT_MS).emitWithAck("presence", { channel }));
  }

  /** How many users and connections are on the channel, at any size. */
  async presenceStats(channel: string): Promise<PresenceStatsOk> {
    if (!this.socket?.connected) throw new Error("roomcast: not connected");
    return unwrap(await this.socket.timeout(REQUEST_TIMEOUT_MS).emitWithAck("presence_stats", { channel }));
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.refreshTimer);
    this.socket?.disconnect();
  }

  private emitLocal<E extends keyof ClientEvents>(event: E, ...args: Parameters<ClientEvents[E]>): void {
    for (const listener of [...(this.listeners.get(event) ?? [])])
      (listener as unknown as (...a: Parameters<ClientEvents[E]>) => void)(...args);
  }

  private async currentToken(forceNew = false): Promise<string> {
    if ((forceNew || !this.token) && this.options.getToken) this.token = await this.options.getToken();
    if (!this.token) throw new Error("roomcast: no token");
    return this.token;
  }

  private async open(): Promise<void> {
    const token = await this.currentToken();
    const url = this.urls[this.urlIndex % this.urls.length]!;
    this.socket?.removeAllListeners();
    this.socket?.disconnect();
    const socket: RoomcastSocket = io(url, {
      auth: (cb) => cb({ token: this.token ?? token }),
      transports: this.options.transports ?? ["websocket", "polling"],
      reconnection: false,
      forceNew: true,
    });
    this.socket = socket;
    socket.on("welcome", (welcome) => {
      this.attempt = 0;
      this.retryAfterMs = undefined;
      this.scheduleRefresh();
      for (const tracked of this.subscriptions.values()) this.resubscribe(tracked);
      this.emitLocal("welcome", welcome);
    });
    socket.on("event", (event) => this.onEvent(event));
    // Also while a subscribe is in flight: the server may send the join before the answer.
    socket.on("presence", (event) => this.subscriptions.get(event.channel)?.options.onPresence?.(event));
    socket.on("lag", (lag) => {
      const tracked = this.subscriptions.get(lag.channel);
      if (tracked?.position && tracked.parkedOn !== socket)
        tracked.position = { offset: lag.offset, epoch: tracked.position.epoch };
      this.emitLocal("lag", lag);
    });
    socket.on("unsubscribed", (notice) => {
      const tracked = this.subscriptions.get(notice.channel);
      // History lost under us: resubscribe with `since`, which answers recovered: false.
      if (tracked && notice.reason === "history_lost") this.resubscribe(tracked);
      else this.subscriptions.delete(notice.channel);
      this.emitLocal("unsubscribed", notice);
    });
    socket.on("closing", (closing) => {
      this.retryAfterMs = closing.retryAfterMs;
      this.emitLocal("closing", closing);
    });
    socket.on("connect_error", (err: Error & { data?: { code?: number; reason?: string } }) => {
      const code = err.data?.code;
      if ((code === 4401 || code === 4403) && !(code === 4401 && this.options.getToken)) {
        this.emitLocal("error", { code, reason: err.data?.reason, message: err.message });
        this.close();
        return;
      }
      if (code === 4401) this.token = undefined; // fetch a new one before retrying
      this.scheduleReconnect();
    });
    socket.on("disconnect", (reason) => {
      clearTimeout(this.refreshTimer);
      for (const tracked of this.subscriptions.values()) tracked.waiting = false;
      this.emitLocal("disconnected", reason);
      if (reason !== "io client disconnect") this.scheduleReconnect();
    });
  }

  private scheduleReconnect(): void {
    if (this.closed || this.reconnectTimer) return;
    const delay = this.retryAfterMs ?? backoffDelay(this.attempt, this.options.backoff);
    this.retryAfterMs = undefined;
    this.attempt++;
    this.urlIndex++;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (!this.closed) this.open().catch(() => this.scheduleReconnect());
    }, delay);
  }

  private scheduleRefresh(): void {
    clearTimeout(this.refreshTimer);
    const exp = this.token ? tokenExpiry(this.token) : undefined;
    if (exp === undefined || !this.options.getToken) return;
    const remaining = exp * 1000 - Date.now();
    const before = this.options.refreshBeforeMs ?? Math.min(30_000, remaining / 3);
    this.refreshTimer = setTimeout(() => void this.refresh(), Math.max(remaining - before, 0));
  }

  private async refresh(): Promise<void> {
    try {
      const token = await this.currentToken(true);
      const answer = await this.socket?.timeout(REQUEST_TIMEOUT_MS).emitWithAck("refresh", { token });
      if (answer && !answer.ok) this.emitLocal("error", answer.error);
    } catch (err) {
      this.emitLocal("error", { message: `token refresh failed: ${(err as Error).message}` });
    }
    if (this.socket?.connected) this.scheduleRefresh();
  }

  private resubscribe(tracked: Tracked): void {
    if (tracked.paused) this.park(tracked);
    else this.sendSubscribe(tracked);
  }

  /**
   * A paused subscription after a reconnect: subscribed (so the user stays a member of the
   * channel's presence) and paused right behind it (requests run in order); nothing is
   * delivered and its position is kept for resume().
   */
  private park(tracked: Tracked): void {
    const socket = this.socket;
    if (!socket?.connected) return;
    tracked.parkedOn = socket;
    tracked.subscribedOn = undefined;
    socket.emit("subscribe", subscribeRequest(tracked, true), (answer: Answer<SubscribeOk>) => {
      if (this.subscriptions.get(tracked.channel) !== tracked || tracked.parkedOn !== socket) return;
      if (answer.ok) tracked.subscribedOn = socket;
      // Refused now (grants changed): resume() subscribes again and reports it then.
      else tracked.parkedOn = undefined;
    });
    socket.emit("control", { channel: tracked.channel, action: "pause" }, () => undefined);
  }

  /** Sends a subscribe for a tracked channel: with `since` once it has a position. */
  private sendSubscribe(tracked: Tracked): void {
    const socket = this.socket;
    if (!socket?.connected) return; // the next `welcome` sends it
    tracked.waiting = true;
    tracked.parkedOn = undefined;
    const request = subscribeRequest(tracked, false);
    // The answer is handled inside the ack callback: it runs before any later event packet.
    socket.emit("subscribe", request, (answer: Answer<SubscribeOk>) => {
      if (this.subscriptions.get(tracked.channel) !== tracked) return;
      const first = tracked.firstAnswer;
      tracked.firstAnswer = undefined;
      tracked.waiting = false;
      tracked.subscribedOn = answer.ok ? socket : undefined;
      if (!answer.ok) {
        this.subscriptions.delete(tracked.channel);
        first?.reject(
          Object.assign(new Error(answer.error.message), { code: answer.error.code, reason: answer.error.reason }),
        );
        return;
      }
      if (tracked.position && !answer.recovered) {
        tracked.position = { offset: answer.offset, epoch: answer.epoch };
        tracked.options.onReset?.({
          snapshot: answer.snapshot,
          events: answer.events,
          offset: answer.offset,
          epoch: answer.epoch,
        });
      } else {
        // First answer (or recovered): deliver its events, then follow from its offset.
        if (!tracked.position)
          tracked.position = { offset: (answer.events[0]?.offset ?? answer.offset + 1) - 1, epoch: answer.epoch };
        for (const event of answer.events) this.deliver(tracked, event);
        tracked.position = { offset: Math.max(tracked.position.offset, answer.offset), epoch: answer.epoch };
      }
      first?.resolve(answer);
    });
  }

  private onEvent(event: ChannelEvent): void {
    const tracked = this.subscriptions.get(event.channel);
    if (!tracked || tracked.waiting || !tracked.position || tracked.parkedOn === this.socket) return;
    if (event.epoch !== tracked.position.epoch) return; // the server ends such a subscription (history_lost)
    if (event.offset > tracked.position.offset + 1) {
      // Never expected from the server; recover rather than deliver out of order.
      this.sendSubscribe(tracked);
      return;
    }
    this.deliver(tracked, event);
  }

  private deliver(tracked: Tracked, event: ChannelEvent): void {
    if (tracked.position && event.epoch === tracked.position.epoch && event.offset <= tracked.position.offset) return;
    tracked.position = { offset: event.offset, epoch: event.epoch };
    tracked.handler(event);
  }
}

/** A tracked channel's subscribe: with `since` once it has a position; parked, without history or `since`. */
function subscribeRequest(tracked: Tracked, parked: boolean): Parameters<ClientToServerEvents["subscribe"]>[0] {
  const request: Parameters<ClientToServerEvents["subscribe"]>[0] =
    !parked && tracked.position
      ? { channel: tracked.channel, since: tracked.position }
      : { channel: tracked.channel, history: parked ? 0 : (tracked.options.history ?? 0) };
  if (tracked.options.filter) request.filter = tracked.options.filter;
  return request;
}

function unwrap<T>(answer: Answer<T>): { ok: true } & T {
  if (answer.ok) return answer;
  throw Object.assign(new Error(answer.error.message), { code: answer.error.code, reason: answer.error.reason });
}

export function createClient(options: RoomcastClientOptions): RoomcastClient {
  return new RoomcastClient(options);
}
