import { MemoryStorage } from '../../src/storage/memory/memory-storage.ts';
import { runStorageCompliance } from './compliance.ts';

runStorageCompliance('memory', () => Promise.resolve({ storage: new MemoryStorage() }));
