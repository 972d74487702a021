/**
 * Redis names of a channel. Every key and the room carry the channel as hash tag, so that
 * the publish script's keys and its pub/sub channel fall in one Redis Cluster slot.
 */
export interface ChannelKeys {
  meta: string;
  /** The pub/sub channel (sharded on a Redis Cluster) that carries its events. */
  feed: string;
  history: string;
  snapshot: string;
  idempotency: (key: string) => string;
}

export function channelKeys(prefix: string, channel: string): ChannelKeys {
  const base = `${prefix}:{${channel}}`;
  return {
    meta: `${base}:meta`,
    feed: `${base}:feed`,
    history: `${base}:history`,
    snapshot: `${base}:snapshot`,
    idempotency: (key) => `${base}:idem:${key}`,
  };
}

/** The Socket.IO room of a channel. */
export function roomOf(channel: string): string {
  return `{${channel}}`;
}

/** The channel of a room made by roomOf, or undefined for other rooms (socket ids). */
export function channelOfRoom(room: string): string | undefined {
  return room.length > 2 && room.startsWith("{") && room.endsWith("}") ? room.slice(1, -1) : undefined;
}
