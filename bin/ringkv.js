#!/usr/bin/env node
// Launcher of the `ringkv` command. ringkv runs its TypeScript sources directly, which
// needs Node 24 (type stripping); inside the project `npx ringkv` and npm scripts use the
// Node 24 that `npm install` brought.
const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  process.stderr.write(
    `ringkv needs Node 24 or later, this is Node ${process.versions.node}.\n` +
      'Inside the project, run it as `npx ringkv ...` or through npm scripts, which use the Node 24 that npm install brought.\n',
  );
  process.exit(1);
}
// V8 settings first, before any of ringkv's code runs (src/runtime/gc-flags.ts says why).
const { applyGcFlags } = await import('../src/runtime/gc-flags.ts');
applyGcFlags();
await import('../src/cli/main.ts');
