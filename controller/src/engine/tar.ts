/**
 * A minimal ustar writer for the few small files the controller places into containers through the Docker API
 * (`putArchive`): secrets and TLS files, with the owner and mode the process inside needs.
 */
export interface TarEntry {
  name: string;
  content?: string | Buffer;
  /** A directory when true (content ignored). */
  directory?: boolean;
  mode: number;
  uid: number;
  gid: number;
}

export function tarFiles(entries: TarEntry[]): Buffer {
  const blocks: Buffer[] = [];
  for (const entry of entries) {
    const body = entry.directory ? Buffer.alloc(0) : Buffer.from(entry.content ?? '');
    blocks.push(header(entry, body.length));
    if (body.length > 0) {
      blocks.push(body);
      const pad = (512 - (body.length % 512)) % 512;
      if (pad) blocks.push(Buffer.alloc(pad));
    }
  }
  blocks.push(Buffer.alloc(1024)); // two empty blocks end the archive
  return Buffer.concat(blocks);
}

function header(entry: TarEntry, size: number): Buffer {
  const block = Buffer.alloc(512);
  const name = entry.directory && !entry.name.endsWith('/') ? `${entry.name}/` : entry.name;
  if (Buffer.byteLength(name) > 100) throw new Error(`tar entry name too long: ${name}`);
  block.write(name, 0, 100, 'utf8');
  octal(block, 100, 8, entry.mode);
  octal(block, 108, 8, entry.uid);
  octal(block, 116, 8, entry.gid);
  octal(block, 124, 12, size);
  octal(block, 136, 12, Math.floor(Date.now() / 1000));
  block.fill(' ', 148, 156); // checksum field counts as spaces while summing
  block.write(entry.directory ? '5' : '0', 156, 1, 'ascii');
  block.write('ustar\u000000', 257, 8, 'binary');
  let sum = 0;
  for (const byte of block) sum += byte;
  octal(block, 148, 7, sum);
  block[155] = 0x20;
  return block;
}

function octal(block: Buffer, offset: number, length: number, value: number): void {
  block.write(`${value.toString(8).padStart(length - 1, '0')}\u0000`, offset, length, 'ascii');
}
