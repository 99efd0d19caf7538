// The file API suite on the local store (the default store: <state>/files), looking at the directory itself.
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { BrokerHarness } from '../test/support/broker-harness.js';
import { fileApiSuite } from './file-api.suite.js';
import { localKeys } from './file-test-kit.js';

fileApiSuite('the local store', async () => ({
  physicalKeys: (h: BrokerHarness, prefix: string) => localKeys(join(h.dir, 'files'), prefix),
  leftovers: async (h: BrokerHarness) => readdir(join(h.dir, 'files', '.tmp')).catch(() => []),
  secrets: [],
  close: async () => undefined,
}));
