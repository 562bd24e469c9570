import { after } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LmdbStorage } from '../../src/storage/lmdb/lmdb-storage.ts';
import { runStorageCompliance } from './compliance.ts';

const directories: string[] = [];
after(() => {
  for (const directory of directories) rmSync(directory, { recursive: true, force: true });
});

runStorageCompliance('lmdb', async () => {
  const directory = mkdtempSync(path.join(os.tmpdir(), 'ringkv-lmdb-'));
  directories.push(directory);
  const storage = await LmdbStorage.open(directory);
  return {
    storage,
    reopen: async () => {
      await storage.close();
      return LmdbStorage.open(directory);
    },
  };
});
