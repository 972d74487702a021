/**
 * The kernel's queue of connections not yet accepted (it clamps this to net.core.somaxconn).
 * Node's default of 511 overflows when a replica's clients all come back at once after
 * another replica is lost: the SYNs it drops are retried after 1, 3, 7, 15 s...
 */
export const LISTEN_BACKLOG = 8192;
