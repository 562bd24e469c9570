// Opens a storage engine by name. The LMDB engine is loaded only when asked for, so tools
// and tests that run in memory do not load the native addon.

import type { StorageEngineName } from '../runtime/config.ts';
import type { Storage } from './contract.ts';
import { MemoryStorage } from './memory/memory-storage.ts';

export async function openStorage(engine: StorageEngineName, dataDir: string): Promise<Storage> {
  switch (engine) {
    case 'memory':
      return new MemoryStorage();
    case 'lmdb': {
      const { LmdbStorage } = await import('./lmdb/lmdb-storage.ts');
      return LmdbStorage.open(dataDir);
    }
  }
}
