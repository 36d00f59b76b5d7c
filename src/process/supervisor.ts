import { spawn } from 'node:child_process';
import { closeSync, fstatSync, openSync, readdirSync, readFileSync, writeSync } from 'node:fs';
import { open, readFile, rename } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/*
 * Supervision of the long-lived processes Rampart starts on this machine: the local deployer's app instances and the
 * local stack's HAProxy, Prometheus and Alertmanager. Each runs detached in its own process group, so it outlives
 * the process that started it and is stopped with everything it spawned. What is known about it lives in a record on
 * disk, not in memory: another process, or a later run, finds it there and can tell it from a stranger that was given
 * the same pid.
 */

/** What is recorded of a supervised process; written before it is ready, so a retry or another process finds it. */
export interface ProcessRecord {
  /** Its pid, which is also its process group id. */
  pid: number;
  /** Kernel start time of the process (/proc/<pid>/stat field 22), to tell our process from a reused pid; null where /proc is missing. */
  processStart: string | null;
  /** What was started, executable first; empty when unknown (a record from an older version, a bare pid file). */
  command: string[];
}

export interface SpawnOptions {
  /** Executable and arguments. */
  command: readonly string[];
  cwd: string;
  /** The whole environment of the process: it inherits nothing that is not here. */
  env: Readonly<Record<string, string | undefined>>;
  /** stdout and stderr are appended here. */
  logFile: string;
  /** A line appended to the log first, to tell this start's lines from an earlier one's when reading the file. */
  banner?: string;
  /** Run as this user and group (root only): PostgreSQL refuses to run as root. */
  uid?: number;
  gid?: number;
}

export interface SupervisedProcess {
  record: ProcessRecord;
  logFile: string;
  /** Size of the log before this start: its own lines begin there. */
  logOffset: number;
  /** How the process ended ("exited with code 1", "was killed by SIGKILL"), or null while it runs. Known only to the process that spawned it. */
  exited(): string | null;
}

/** How long a group may take to go once SIGKILL is sent; longer means it cannot be killed (a process stuck in the kernel). */
const KILL_WAIT_MS = 2_000;
const POLL_MS = 50;

/** Starts a process detached in its own process group, stdout and stderr appended to its log. */
export async function spawnDetached(options: SpawnOptions): Promise<SupervisedProcess> {
  const [executable, ...args] = options.command;
  if (!executable) throw new Error('a supervised process needs a command');
  const log = openSync(options.logFile, 'a');
  let child;
  let logOffset: number;
  try {
    if (options.banner !== undefined) writeSync(log, `${options.banner}\n`);
    logOffset = fstatSync(log).size;
    child = spawn(executable, args, { cwd: options.cwd, env: { ...options.env }, detached: true, stdio: ['ignore', log, log], uid: options.uid, gid: options.gid });
  } finally {
    closeSync(log);
  }
  let exit: string | null = null;
  const spawnError = new Promise<Error>((resolve) =>
    child.once('error', (error) => {
      exit = `could not start: ${error.message}`;
      resolve(error);
    }),
  );
  child.once('exit', (code, signal) => (exit = code !== null ? `exited with code ${code}` : `was killed by ${signal}`));
  if (child.pid === undefined) throw new Error(`could not start ${options.command.join(' ')}: ${(await spawnError).message}`);
  // The supervisor does not wait for it: the record, not this handle, is how it is found and stopped.
  child.unref();
  return {
    record: { pid: child.pid, processStart: processStartTime(child.pid), command: [...options.command] },
    logFile: options.logFile,
    logOffset,
    exited: () => exit,
  };
}

/** Writes a record so that a reader sees the old one or the new one, never half of either, even across a crash. */
export async function writeRecord(file: string, record: ProcessRecord): Promise<void> {
  const temporary = `${file}.${process.pid}.tmp`;
  const handle = await open(temporary, 'w');
  try {
    await handle.writeFile(`${JSON.stringify(record, null, 2)}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temporary, file);
}

/**
 * The record in the file, or null if there is none. A file holding only a pid (a pid file written by hand, by another
 * tool or by an older version) reads as a record whose start time and command are unknown.
 */
export async function readRecord<T extends ProcessRecord = ProcessRecord>(file: string): Promise<T | null> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
  const unreadable = (cause?: unknown) => new Error(`process record ${file} is neither JSON nor a pid; remove it after stopping the process by hand`, { cause });
  if (/^\s*\d+\s*$/.test(text)) return { pid: Number(text), processStart: null, command: [] } as ProcessRecord as T;
  let parsed: Partial<ProcessRecord>;
  try {
    parsed = JSON.parse(text) as Partial<ProcessRecord>;
  } catch (error) {
    throw unreadable(error);
  }
  if (!Number.isInteger(parsed.pid) || (parsed.pid as number) <= 0) throw unreadable();
  return { ...parsed, processStart: parsed.processStart ?? null, command: parsed.command ?? [] } as T;
}

/**
 * Whether the recorded process, or what it started, still runs. A pid the kernel has since given to another process
 * is not ours: its start time differs (or, where none was recorded, its executable does), and it is never running.
 */
export function isRunning(record: ProcessRecord): boolean {
  const leader = readStat(record.pid);
  if (leader && leader.state !== 'Z') {
    if (record.processStart !== null) return leader.start === record.processStart;
    return record.command.length === 0 || sameExecutable(record.pid, record.command[0]!);
  }
  // The leader is gone, but what it spawned may live on in its group. While a group has members the kernel does not
  // hand its id out as a pid, so the group is still ours.
  return groupAlive(record.pid);
}

/**
 * Stops the recorded process and everything in its group: SIGTERM, up to graceMs for it to exit, then SIGKILL. A record
 * that is not running (gone, or its pid reused) is left alone. Throws if the group survives SIGKILL.
 */
export async function stopGroup(record: ProcessRecord, graceMs: number): Promise<void> {
  if (!isRunning(record)) return;
  signalGroup(record, 'SIGTERM');
  if (await goneWithin(record, graceMs)) return;
  signalGroup(record, 'SIGKILL');
  if (await goneWithin(record, KILL_WAIT_MS)) return;
  const what = record.command.length > 0 ? ` (${record.command.join(' ')})` : '';
  throw new Error(`process group ${record.pid}${what} survived SIGKILL for ${KILL_WAIT_MS} ms; a process stuck in the kernel cannot be killed, see it with: pgrep -a -g ${record.pid}`);
}

/** The last lines a process logged from fromByte on (its own start, see logOffset), for error messages. */
export function logTail(file: string, fromByte = 0, lines = 20): string {
  try {
    const text = readFileSync(file).subarray(fromByte).toString('utf8').trimEnd();
    return text ? text.split('\n').slice(-lines).join('\n') : '(nothing logged)';
  } catch {
    return '(no log)';
  }
}

async function goneWithin(record: ProcessRecord, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!isRunning(record)) return true;
    if (Date.now() >= deadline) return false;
    await sleep(POLL_MS);
  }
}

/**
 * Signals the group. A recorded pid that leads no group (a pid file written by hand) gets the signal alone, and only
 * while it is still ours: between two signals it may have exited and its pid been given to a stranger.
 */
function signalGroup(record: ProcessRecord, signal: NodeJS.Signals): void {
  if (send(-record.pid, signal) || !isRunning(record)) return;
  send(record.pid, signal);
}

/** False if there is no such process or group. */
function send(target: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(target, signal);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw new Error(`sending ${signal} to process ${Math.abs(target)} failed: ${(error as Error).message}`, { cause: error });
  }
}

interface ProcessStat {
  state: string;
  group: number;
  start: string;
}

/** /proc/<pid>/stat; null where the process or /proc is missing. */
function readStat(pid: number | string): ProcessStat | null {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // The command name (field 2) may hold spaces and parentheses: count from the last ')'. Then state, ppid, pgrp, …
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { state: fields[0] ?? '', group: Number(fields[2]), start: fields[19] ?? '' };
}

function processStartTime(pid: number): string | null {
  return readStat(pid)?.start || null;
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  // The signal reaches zombies too: a group whose members all exited but are not yet reaped by their parent (an
  // orphan waits for init, which in a container may never reap it) is gone.
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return true;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(entry);
    if (stat && stat.group === pgid && stat.state !== 'Z') return true;
  }
  return false;
}

function sameExecutable(pid: number, executable: string): boolean {
  try {
    const running = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0] ?? '';
    return path.basename(running) === path.basename(executable);
  } catch {
    return true;
  }
}
