// Entry of every k6-runner thread (VUs, setup/teardown and the HTTP helper): registers tsx
// (workers do not inherit the parent's `--import tsx` hooks for their entry module), then
// imports the thread's real module, given as `workerData.entry`.
import { register } from "tsx/esm/api";
import { workerData } from "node:worker_threads";

register();
await import(workerData.entry);
