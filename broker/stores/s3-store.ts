import { Readable } from 'node:stream';
import { encodeKey, failure, S3Client, S3Timeout, type S3Credentials, type S3Response, type S3Target } from './s3-client.js';
import { satisfyRange, StoreError, type FileInfo, type ListPage, type ReadResult, type Store, type WriteOptions } from './store.js';

const header = (res: S3Response, name: string): string | undefined => {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
};

const XML_ENTITIES: Readonly<Record<string, string>> = { '&quot;': '"', '&amp;': '&', '&lt;': '<', '&gt;': '>', '&apos;': "'" };
const unescapeXml = (s: string): string => s.replace(/&(quot|amp|lt|gt|apos);/g, (e) => XML_ENTITIES[e] as string);
const tag = (xml: string, name: string): string | undefined => new RegExp(`<${name}>([^<]*)</${name}>`).exec(xml)?.[1];

/** Retry a request that is safe to repeat (reads, deletes, buffered parts) on a store that is briefly unavailable. */
async function retrying<T>(attempt: () => Promise<T>, tries = 3): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await attempt();
    } catch (err) {
      if (!(err instanceof StoreError) || err.kind !== 'unavailable' || err instanceof S3Timeout || i >= tries) throw err;
      await new Promise((r) => setTimeout(r, Math.random() * 100 * 2 ** i));
    }
  }
}

/**
 * Files in an S3 bucket, every request signed with the broker's own credentials. Uploads are cut into parts of
 * `partSize`, each buffered and hashed so it is signed over its real SHA-256 and can be retried: at most two
 * parts per upload are in memory (one filling, one sending), whatever the object's size. An upload that fails
 * or is abandoned is aborted, so no partial object ever appears.
 */
export class S3Store implements Store {
  readonly type = 's3' as const;

  private constructor(
    readonly name: string,
    private readonly client: S3Client,
    private readonly partSize: number,
  ) {}

  static async create(name: string, target: S3Target, credentials: () => Promise<S3Credentials>, partSize: number): Promise<S3Store> {
    return new S3Store(name, await S3Client.create(target, credentials), partSize);
  }

  private infoFrom(key: string, res: S3Response, size: number): FileInfo {
    const modified = Date.parse(header(res, 'last-modified') ?? '');
    return { key, size, modified: Number.isNaN(modified) ? 0 : modified, etag: header(res, 'etag') ?? '""' };
  }

  async stat(key: string): Promise<FileInfo | null> {
    return retrying(async () => {
      const res = await this.client.send('HEAD', key);
      // failure() reads the body, and reading an undici body after dump() throws inside undici, outside this
      // promise: an uncaught TypeError that ended the process whenever S3 refused a HEAD (stat, delete, move).
      if (res.status !== 200 && res.status !== 404) throw await failure('HeadObject', res);
      await res.body.dump();
      if (res.status === 404) return null;
      return this.infoFrom(key, res, Number(header(res, 'content-length') ?? 0));
    });
  }

  async read(key: string, range?: { start?: number; end?: number; suffix?: number }): Promise<ReadResult> {
    const headers: Record<string, string> = {};
    if (range) headers['range'] = range.suffix !== undefined ? `bytes=-${range.suffix}` : `bytes=${range.start ?? 0}-${range.end ?? ''}`;
    const res = await retrying(() => this.client.send('GET', key, { headers }));
    if (res.status === 200) {
      const size = Number(header(res, 'content-length') ?? 0);
      // A server that ignores Range answers 200 with everything: cut the range out ourselves.
      if (range) {
        const r = satisfyRange(range, size);
        if (!r) {
          await res.body.dump();
          throw new StoreError('range', 'range not satisfiable', size);
        }
        return { info: this.infoFrom(key, res, size), body: sliceStream(res.body, r.start, r.end), range: r };
      }
      return { info: this.infoFrom(key, res, size), body: res.body };
    }
    if (res.status === 206) {
      const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(header(res, 'content-range') ?? '');
      if (!m) {
        await res.body.dump();
        throw new StoreError('unavailable', 'GetObject: a partial answer without Content-Range');
      }
      const size = Number(m[3]);
      // Hold the server to RFC 9110 §14.1.2 as the local store is: RGW answers bytes=-0 (unsatisfiable) with the
      // whole object as a 206.
      if (range && !satisfyRange(range, size)) {
        await res.body.dump();
        throw new StoreError('range', 'range not satisfiable', size);
      }
      return { info: this.infoFrom(key, res, size), body: res.body, range: { start: Number(m[1]), end: Number(m[2]) } };
    }
    if (res.status === 416) {
      const size = Number(/\/(\d+)$/.exec(header(res, 'content-range') ?? '')?.[1] ?? (await this.stat(key))?.size ?? 0);
      await res.body.dump();
      throw new StoreError('range', 'range not satisfiable', size);
    }
    throw await failure('GetObject', res);
  }

  async write(key: string, body: Readable, options: WriteOptions): Promise<FileInfo> {
    if (options.length !== undefined && options.length > options.maxBytes) throw new StoreError('too_large', 'declared length over the limit');
    let received = 0;
    let filling: Buffer[] = [];
    let fillingBytes = 0;
    let uploadId: string | null = null;
    let nextPart = 1;
    const parts: Array<{ n: number; etag: string }> = [];
    let sending: Promise<void> | null = null;
    const sendPart = (buf: Buffer, n: number, id: string): Promise<void> =>
      retrying(async () => {
        const res = await this.client.send('PUT', key, { query: { partNumber: String(n), uploadId: id }, body: buf });
        // Read the error body before discarding it: it holds the S3 error code the refusal names.
        if (res.status !== 200) throw await failure('UploadPart', res);
        await res.body.dump();
        parts.push({ n, etag: header(res, 'etag') ?? '' });
      });
    try {
      try {
        for await (const chunk of body as AsyncIterable<Buffer>) {
          received += chunk.length;
          if (received > options.maxBytes) throw new StoreError('too_large', 'body over the limit');
          filling.push(chunk);
          fillingBytes += chunk.length;
          if (fillingBytes >= this.partSize) {
            const buf = Buffer.concat(filling, fillingBytes);
            filling = [];
            fillingBytes = 0;
            uploadId ??= await this.createUpload(key);
            // Send this part while the next one fills; never more than one part on the wire per upload.
            await sending;
            sending = sendPart(buf, nextPart++, uploadId);
            sending.catch(() => undefined);
          }
        }
      } catch (err) {
        if (err instanceof StoreError) throw err;
        throw new StoreError('incomplete', 'the client went away mid-upload');
      }
      if (options.length !== undefined && received !== options.length) throw new StoreError('incomplete', `received ${received} of ${options.length} bytes`);
      const last = Buffer.concat(filling, fillingBytes);
      if (uploadId === null) return await this.putObject(key, last);
      await sending;
      if (last.length > 0 || parts.length === 0) await sendPart(last, nextPart++, uploadId);
      return await this.complete(key, uploadId, parts);
    } catch (err) {
      if (uploadId !== null) await this.abort(key, uploadId);
      throw err;
    }
  }

  private async putObject(key: string, body: Buffer): Promise<FileInfo> {
    const res = await retrying(() => this.client.send('PUT', key, { body }));
    // The error body first (its <Code> is the detail, and NoSuchBucket must not read as a missing file), then discard.
    if (res.status !== 200) throw await failure('PutObject', res);
    await res.body.dump();
    return { key, size: body.length, modified: Date.now(), etag: header(res, 'etag') ?? '""' };
  }

  private async createUpload(key: string): Promise<string> {
    const res = await retrying(() => this.client.send('POST', key, { query: { uploads: '' } }));
    if (res.status !== 200) throw await failure('CreateMultipartUpload', res);
    const id = tag(await res.body.text(), 'UploadId');
    if (!id) throw new StoreError('unavailable', 'CreateMultipartUpload: no UploadId in the answer');
    return unescapeXml(id);
  }

  private async complete(key: string, uploadId: string, parts: Array<{ n: number; etag: string }>): Promise<FileInfo> {
    const xml = `<CompleteMultipartUpload>${[...parts]
      .sort((a, b) => a.n - b.n)
      .map((p) => `<Part><PartNumber>${p.n}</PartNumber><ETag>${p.etag.replace(/&/g, '&amp;').replace(/</g, '&lt;')}</ETag></Part>`)
      .join('')}</CompleteMultipartUpload>`;
    const res = await this.client.send('POST', key, { query: { uploadId }, body: Buffer.from(xml), headers: { 'content-type': 'application/xml' } });
    // S3 may answer 200 and put the error in the body (it has already started answering when the error happens).
    const text = res.status === 200 ? await res.body.text() : '';
    if (res.status !== 200) throw await failure('CompleteMultipartUpload', res);
    if (text.includes('<Error>')) throw new StoreError('unavailable', `CompleteMultipartUpload: ${tag(text, 'Code') ?? 'error'}`);
    const info = await this.stat(key);
    if (!info) throw new StoreError('unavailable', 'CompleteMultipartUpload: the object is not there');
    return info;
  }

  private async abort(key: string, uploadId: string): Promise<void> {
    await retrying(async () => {
      const res = await this.client.send('DELETE', key, { query: { uploadId } });
      await res.body.dump();
    }).catch(() => undefined); // best effort: a bucket lifecycle rule should also expire incomplete uploads
  }

  async delete(key: string): Promise<boolean> {
    // S3 deletes answer 204 whether or not the key existed: look first, so the caller can say which.
    const existed = (await this.stat(key)) !== null;
    const res = await retrying(() => this.client.send('DELETE', key));
    if (res.status !== 204 && res.status !== 200) throw await failure('DeleteObject', res); // reads the error code first
    await res.body.dump();
    return existed;
  }

  async move(from: string, to: string): Promise<FileInfo> {
    if (from === to) {
      const same = await this.stat(from);
      if (!same) throw new StoreError('not_found', 'no such file');
      return same;
    }
    // S3 has no rename: copy (up to 5 GiB in one request), then delete the source.
    const res = await this.client.send('PUT', to, { headers: { 'x-amz-copy-source': `/${this.client.bucket}/${encodeKey(from)}` } });
    const text = res.status === 200 ? await res.body.text() : '';
    if (res.status !== 200) throw await failure('CopyObject', res);
    if (text.includes('<Error>')) throw new StoreError('unavailable', `CopyObject: ${tag(text, 'Code') ?? 'error'}`);
    await this.delete(from);
    const info = await this.stat(to);
    if (!info) throw new StoreError('unavailable', 'CopyObject: the copy is not there');
    return info;
  }

  async list(prefix: string, options: { startAfter?: string; limit: number }): Promise<ListPage> {
    // encoding-type=url: keys come back percent-encoded, so no key can break the XML read below.
    const query: Record<string, string> = { 'list-type': '2', prefix, 'max-keys': String(options.limit), 'encoding-type': 'url' };
    if (options.startAfter !== undefined) query['start-after'] = options.startAfter;
    const res = await retrying(() => this.client.send('GET', null, { query }));
    if (res.status !== 200) throw await failure('ListObjectsV2', res);
    const xml = await res.body.text();
    const files: FileInfo[] = [];
    for (const m of xml.matchAll(/<Contents>([\s\S]*?)<\/Contents>/g)) {
      const c = m[1] as string;
      // encoding-type=url percent-encodes the key, but characters the encoder keeps (RGW keeps ') still arrive
      // XML-escaped (&apos;): undo the XML first, then the URL encoding. AWS writes a space as + and a literal +
      // as %2B (measured in brekkylab/backlot#178; RGW writes %20 and %2B), so + decodes to a space.
      const key = decodeURIComponent(unescapeXml(tag(c, 'Key') ?? '').replace(/\+/g, ' '));
      const modified = Date.parse(tag(c, 'LastModified') ?? '');
      files.push({ key, size: Number(tag(c, 'Size') ?? 0), modified: Number.isNaN(modified) ? 0 : modified, etag: unescapeXml(tag(c, 'ETag') ?? '""') });
    }
    const truncated = tag(xml, 'IsTruncated') === 'true';
    return truncated && files.length > 0 ? { files, next: (files[files.length - 1] as FileInfo).key } : { files };
  }

  async close(): Promise<void> {
    await this.client.close();
  }
}

/** Bytes start..end (inclusive) of a stream. */
function sliceStream(source: Readable, start: number, end: number): Readable {
  let offset = 0;
  return Readable.from(
    (async function* () {
      for await (const chunk of source as AsyncIterable<Buffer>) {
        const from = Math.max(0, start - offset);
        const to = Math.min(chunk.length, end + 1 - offset);
        offset += chunk.length;
        if (to > from) yield chunk.subarray(from, to);
        if (offset > end) break;
      }
    })(),
  );
}
