import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { test, type TestContext } from 'node:test';
import { processTree, residentMiB, treeCpuSeconds } from '../../bench/proc';

// A child that burns `seconds` of its own CPU (measured by itself, so a loaded machine only makes it slower) and then waits for stdin to close.
const BURN = "const s=+process.argv[1];while(process.cpuUsage().user+process.cpuUsage().system<s*1e6);process.stdout.write('burnt\\n');process.stdin.resume();process.stdin.on('end',()=>process.exit(0));";

function burner(t: TestContext, seconds: number) {
  const child = spawn(process.execPath, ['-e', BURN, String(seconds)], { stdio: ['pipe', 'pipe', 'inherit'] });
  // A failed assertion must not leave it waiting on its stdin.
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return child;
}

test('a process tree counts the CPU of a live child, and keeps counting it once the child has exited and been reaped', async (t) => {
  const before = treeCpuSeconds([process.pid]);
  const child = burner(t, 0.4);
  await once(child.stdout!, 'data');
  assert.ok(processTree([process.pid]).includes(child.pid!), 'the child is in the tree');
  const whileAlive = treeCpuSeconds([process.pid]) - before;
  assert.ok(whileAlive >= 0.35, `live child counted: ${whileAlive} s`);
  child.stdin!.end();
  await once(child, 'exit');
  assert.ok(!processTree([process.pid]).includes(child.pid!), 'the child is gone from the tree');
  const afterExit = treeCpuSeconds([process.pid]) - before;
  assert.ok(afterExit >= 0.35, `reaped child still counted: ${afterExit} s`);
});

test('resident memory is read for a live process and is zero for one that is gone', async (t) => {
  const own = residentMiB(process.pid);
  assert.ok(own.rss > 10 && own.peak >= own.rss, `own RSS ${own.rss} MiB, peak ${own.peak} MiB`);
  const child = burner(t, 0);
  await once(child.stdout!, 'data');
  const pid = child.pid!;
  child.stdin!.end();
  await once(child, 'exit');
  assert.deepEqual(residentMiB(pid), { rss: 0, peak: 0 });
});
