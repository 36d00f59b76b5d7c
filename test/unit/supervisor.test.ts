import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { PROJECT_ROOT } from '../../src/paths';
import { waitFor } from '../helpers/temporal';
import { withFileLock } from '../../src/process/lock';
import { isRunning, readRecord, spawnDetached, stopGroup, writeRecord, type ProcessRecord } from '../../src/process/supervisor';

// Real processes throughout: shells that spawn grandchildren, and separate Node processes contending for one lock.

let dir: string;
const started: ProcessRecord[] = [];
const lockers = new Set<ChildProcess>();

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'rampart-supervisor-'));
});

after(async () => {
  for (const locker of lockers) locker.kill('SIGKILL');
  await Promise.allSettled(started.map((record) => stopGroup(record, 0)));
  await rm(dir, { recursive: true, force: true });
});

/** Running, and not a zombie (an orphan's exit status may wait for an init that never reads it). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
}

async function shell(name: string, script: string): Promise<ProcessRecord> {
  const spawned = await spawnDetached({ command: ['sh', '-c', script], cwd: dir, env: { PATH: process.env.PATH }, logFile: path.join(dir, `${name}.log`) });
  started.push(spawned.record);
  return spawned.record;
}

test('a group stop ends the grandchildren a process spawned, not just the process', async () => {
  const pidsFile = path.join(dir, 'grandchildren');
  // The shell leaves two sleeps behind in its group; signalling the shell alone would orphan them.
  const record = await shell('tree', `sleep 300 & echo $! > ${pidsFile}.tmp; sleep 300 & echo $! >> ${pidsFile}.tmp; mv ${pidsFile}.tmp ${pidsFile}; wait`);
  const grandchildren = await waitFor('the grandchildren to be recorded', async () => {
    const pids = existsSync(pidsFile) ? (await readFile(pidsFile, 'utf8')).trim().split('\n').map(Number) : [];
    return pids.length === 2 ? pids : null;
  });
  assert.ok(grandchildren.every(alive) && isRunning(record));

  await stopGroup(record, 2_000);

  assert.deepEqual(grandchildren.filter(alive), [], 'no grandchild survives the group stop');
  assert.equal(isRunning(record), false);
});

test('a group that ignores SIGTERM is killed once the grace time is over', async () => {
  // An ignored signal stays ignored across fork and exec, so the sleep ignores SIGTERM too.
  const record = await shell('stubborn', "trap '' TERM; sleep 300 & wait");
  await waitFor('the shell to start its sleep', async () => childrenOf(record.pid).length > 0, 10_000, 25);
  const graceMs = 500;
  const stopStarted = Date.now();

  await stopGroup(record, graceMs);

  assert.ok(Date.now() - stopStarted >= graceMs, 'SIGTERM was given its grace time first');
  assert.equal(isRunning(record), false);
});

test('a record whose pid now belongs to another process is not running, and its stop signals nobody', async () => {
  const record = await shell('reused', 'exec sleep 300');
  assert.ok(record.processStart, 'the kernel start time is recorded');
  assert.equal(isRunning(record), true);

  // The same pid with another start time is what a reused pid looks like: the kernel gave it to a later process.
  const reused: ProcessRecord = { ...record, processStart: String(Number(record.processStart) + 1) };
  assert.equal(isRunning(reused), false);
  await stopGroup(reused, 100);
  assert.ok(alive(record.pid), 'the process now holding the pid was not signalled');

  // A bare pid file knows no start time: the executable must still match (once the shell has become the sleep).
  await waitFor('the shell to exec sleep', async () => readFileSync(`/proc/${record.pid}/cmdline`, 'utf8').startsWith('sleep'), 10_000, 25);
  assert.equal(isRunning({ pid: record.pid, processStart: null, command: ['/usr/sbin/haproxy'] }), false);
  assert.equal(isRunning({ pid: record.pid, processStart: null, command: ['/bin/sleep'] }), true);

  // Written and read back through the file a later run would find.
  const file = path.join(dir, 'reused.json');
  await writeRecord(file, record);
  const read = await readRecord(file);
  assert.deepEqual(read, record);
  await stopGroup(read!, 2_000);
  assert.equal(isRunning(record), false, 'an exited process is not running');
});

/** A separate Node process running `body` with withFileLock in scope; its stdout lines are collected. */
function locker(body: string): { child: ChildProcess; lines: string[] } {
  const child = spawn(process.execPath, ['--import', 'tsx', '-e', `const { withFileLock } = require(${JSON.stringify(path.join(PROJECT_ROOT, 'src/process/lock'))});\n${body}`], {
    cwd: PROJECT_ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  lockers.add(child);
  child.once('exit', () => lockers.delete(child));
  const lines: string[] = [];
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => lines.push(...chunk.split('\n').filter(Boolean)));
  return { child, lines };
}

test('a lock whose holder died is taken over', async () => {
  const lockFile = path.join(dir, 'slot.json');
  // The interval keeps the holder's event loop alive: an idle process would exit and remove its lock on the way out.
  const holder = locker(`setInterval(() => {}, 1000); withFileLock(${JSON.stringify(lockFile)}, () => { console.log('locked'); return new Promise(() => {}); }, { staleMs: 2000 });`);
  await waitFor('the other process to hold the lock', async () => holder.lines.includes('locked'), 10_000, 25);
  holder.child.kill('SIGKILL');
  await waitFor('the holder to die', async () => holder.child.exitCode !== null || holder.child.signalCode !== null, 10_000, 25);
  assert.ok(existsSync(`${lockFile}.lock`), 'the dead holder left its lock behind');

  const takenAt = await withFileLock(lockFile, async () => Date.now(), { staleMs: 2_000, timeoutMs: 15_000 });

  assert.ok(takenAt > 0);
  assert.equal(existsSync(`${lockFile}.lock`), false, 'released after the operation');
});

test('two processes locking the same file take turns', async () => {
  const lockFile = path.join(dir, 'turns.json');
  const journal = path.join(dir, 'turns.log');
  const go = path.join(dir, 'turns.go');
  await writeFile(journal, '');
  // Both wait for the go file, then contend at once: three turns each, every turn a start and an end 150 ms apart.
  const body = (name: string) => `
    const { appendFileSync, existsSync } = require('node:fs');
    const wait = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
    (async () => {
      console.log('ready');
      while (!existsSync(${JSON.stringify(go)})) await wait(10);
      for (let turn = 0; turn < 3; turn++) {
        await withFileLock(${JSON.stringify(lockFile)}, async () => {
          appendFileSync(${JSON.stringify(journal)}, 'start ${name}\\n');
          await wait(150);
          appendFileSync(${JSON.stringify(journal)}, 'end ${name}\\n');
        });
      }
      console.log('finished');
    })();`;
  const lockersStarted = [locker(body('a')), locker(body('b'))];
  await waitFor('both lockers to be ready', async () => lockersStarted.every(({ lines }) => lines.includes('ready')), 10_000, 25);
  await writeFile(go, '');
  await waitFor('both lockers to finish', async () => lockersStarted.every(({ lines }) => lines.includes('finished')), 30_000, 25);

  const entries = (await readFile(journal, 'utf8')).trim().split('\n');
  assert.equal(entries.length, 12);
  for (let index = 0; index < entries.length; index += 2) {
    const holder = entries[index]!.replace('start ', '');
    assert.equal(entries[index + 1], `end ${holder}`, `turns overlapped:\n${entries.join('\n')}`);
  }
});

function childrenOf(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(' ').filter(Boolean);
  } catch {
    return [];
  }
}
