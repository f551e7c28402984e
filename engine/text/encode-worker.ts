// The tokenizer's encoding thread (engine/text/tokenizer.ts encodeAsync): the same tokenizer.json, one text at a time.
import { parentPort, workerData } from 'node:worker_threads';
import { TextTokenizer } from './tokenizer.js';

const tok = new TextTokenizer(workerData.json, workerData.config);
parentPort!.on('message', (m: { id: number; text: string; addSpecialTokens: boolean }) => {
  try {
    parentPort!.postMessage({ id: m.id, ids: tok.encode(m.text, m.addSpecialTokens) });
  } catch (e) {
    parentPort!.postMessage({ id: m.id, error: (e as Error).message });
  }
});
