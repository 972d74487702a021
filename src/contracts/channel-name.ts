/** docs/protocol.md, "Channels and authorization": `<namespace>:<rest>`. */
export const CHANNEL_NAME = /^[a-z][a-z0-9_-]{0,31}:[A-Za-z0-9_.:@-]{1,200}$/;

export interface ChannelName {
  channel: string;
  namespace: string;
  rest: string;
}

export function parseChannelName(channel: string): ChannelName | undefined {
  if (!CHANNEL_NAME.test(channel)) return undefined;
  const colon = channel.indexOf(":");
  return { channel, namespace: channel.slice(0, colon), rest: channel.slice(colon + 1) };
}
