// The corpus format of shared/corpus: documents separated by a line holding only U+001E; .xz compressed or plain.
import { readFile } from 'node:fs/promises';
import { xz } from '@napi-rs/lzma';

/** A text file, plain or .xz. */
export async function readText(path: string): Promise<string> {
  const raw = await readFile(path);
  return (path.endsWith('.xz') ? xz.decompressSync(raw) : raw).toString('utf8');
}

export async function readCorpus(path: string): Promise<string[]> {
  const text = await readText(path);
  const docs = text.split('\n\u001e\n');
  if (docs.length > 1 && docs[docs.length - 1] === '') docs.pop();
  return docs;
}
