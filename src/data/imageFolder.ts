/**
 * Image folders as a dataset (docs/data.md): `DIR/<class>/<image>` (or `DIR/train|val|test/<class>/<image>`), decoded
 * once with sharp into a cache of uint8 NHWC pixels, one file per split, that training reads a batch at a time.
 *
 * - scan: class folders (sorted names are the labels), their image files (by extension, walked recursively,
 *   symbolic links followed once); hidden entries and other files are ignored.
 * - probe: every file's header (format, size, channels), in parallel; a file that is not a readable image or declares
 *   more pixels than the limit (an image bomb) is skipped, with its reason, before anything is decoded.
 * - split: the user's own splits, or a seeded stratified split; every split in a seeded order.
 * - decode: shorter side to the image size, then a centre crop; 1 or 3 channels. Resumable: an interrupted decode
 *   continues where it stopped. Published atomically (a folder rename) under a lock.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { NasError, invalidParameter } from '../util/errors';
import { acquireLock, ioError, makeDir, readJsonFile, writeFileAtomic } from '../util/files';
import { stripUndefined } from '../util/objects';
import { Rng } from '../util/rng';
import type { ImageSet } from './types';

/** File extensions read as images (case-insensitive), as sharp decodes them. */
export const IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.webp', '.gif', '.tif', '.tiff', '.avif'];
/** Folder names that mark a split layout (`DIR/train/<class>/...`). */
const SPLIT_FOLDERS: Record<string, SplitName> = { train: 'train', val: 'validation', validation: 'validation', test: 'test' };
/** Bump when the cache's layout or the decoding changes: older caches are then rebuilt. */
const CACHE_VERSION = 1;
/** Labels are one byte each. */
export const MAX_CLASSES = 256;

export type SplitName = 'train' | 'validation' | 'test';
const SPLITS: SplitName[] = ['train', 'validation', 'test'];

/** How an image folder is read and split (recorded in a run's config.json). */
export interface ImageFolderOptions {
  /** Side of the square images the cache holds (default 32). */
  imageSize?: number;
  /** 1 (grey) or 3 (RGB); default: 1 when every image is grey, else 3. */
  channels?: 1 | 3;
  /** Share of each class held out for validation when the folder has no `val/` (default 0.1). */
  validationFraction?: number;
  /** Share of each class held out for testing when the folder has no `test/` (default 0.2). */
  testFraction?: number;
  /** Seed of the split and of each split's order (default 0). */
  seed?: number;
  /** Where caches live (default: $NAS_CACHE_DIR, else $XDG_CACHE_HOME/oneshot-nas, else ~/.cache/oneshot-nas). */
  cacheDir?: string;
  /** A file declaring more pixels (width x height) than this is skipped as an image bomb (default 100 million). */
  maxPixels?: number;
}

/** Progress of `prepareImageFolder`. */
export type ImageFolderEvent =
  | { type: 'scan'; files: number; classes: number }
  | { type: 'probe'; done: number; total: number }
  | { type: 'decode'; done: number; total: number; resumedAt: number; imagesPerSec: number }
  | { type: 'wait'; holder: string }
  | { type: 'ready'; dir: string; counts: Record<SplitName, number>; skipped: number; cached: boolean };

/** A file that was left out, and why. */
export interface SkippedFile {
  file: string;
  reason: string;
}

/** manifest.json of a published cache. */
export interface ImageFolderManifest {
  format: 'oneshot-nas-image-cache/1';
  version: number;
  source: string;
  key: string;
  layout: 'classes' | 'splits';
  classNames: string[];
  imageSize: number;
  channels: number;
  options: Required<Omit<ImageFolderOptions, 'cacheDir'>>;
  /** Every candidate file (relative path, size, mtime): a change of any one rebuilds the cache. */
  sources: SourceFile[];
  /** Per split: the files it holds, in order (indices into `sources`), and how many. */
  splits: Record<SplitName, { n: number; files: number[] }>;
  skipped: SkippedFile[];
  /** Images converted to the cache's channel count (grey to RGB or colour to grey). */
  converted: number;
}

interface SourceFile {
  rel: string;
  size: number;
  mtimeMs: number;
}

interface Candidate extends SourceFile {
  /** The path as the filesystem spells it (bytes: a name need not be UTF-8). */
  abs: Buffer;
  cls: number;
  split?: SplitName;
}

const DEFAULTS = { imageSize: 32, validationFraction: 0.1, testFraction: 0.2, seed: 0, maxPixels: 100_000_000 };

/** The folder caches go in when no cacheDir is given. */
export function defaultCacheDir(): string {
  if (process.env.NAS_CACHE_DIR) return process.env.NAS_CACHE_DIR;
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'oneshot-nas');
}

function checkOptions(o: ImageFolderOptions): void {
  const int = (k: keyof ImageFolderOptions, lo: number, hi: number): void => {
    const v = o[k];
    if (v !== undefined && !(Number.isInteger(v) && (v as number) >= lo && (v as number) <= hi))
      throw invalidParameter(k, `an integer in ${lo}..${hi}`, v, 'ERR_NAS_BAD_ARG');
  };
  int('imageSize', 8, 1024);
  int('seed', 0, 2 ** 31 - 1);
  int('maxPixels', 1, 2 ** 40);
  if (o.channels !== undefined && o.channels !== 1 && o.channels !== 3)
    throw invalidParameter('channels', '1 or 3', o.channels, 'ERR_NAS_BAD_ARG');
  for (const k of ['validationFraction', 'testFraction'] as const) {
    const v = o[k];
    if (v !== undefined && !(typeof v === 'number' && v > 0 && v < 0.5))
      throw invalidParameter(k, 'a number in (0, 0.5)', v, 'ERR_NAS_BAD_ARG');
  }
}

/** A path for messages: UTF-8 where it is, else with the undecodable bytes as \xNN. */
export function displayPath(p: Buffer): string {
  const s = p.toString('utf8');
  if (Buffer.from(s, 'utf8').equals(p)) return s;
  return Array.from(p, (b) => (b < 0x80 ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`)).join('');
}

const isUtf8 = (b: Buffer): boolean => Buffer.from(b.toString('utf8'), 'utf8').equals(b);
const join = (dir: Buffer, name: Buffer): Buffer => Buffer.concat([dir, Buffer.from('/'), name]);

function listDir(dir: Buffer): Buffer[] {
  try {
    return (fs.readdirSync(dir, { encoding: 'buffer' }) as Buffer[]).sort(Buffer.compare);
  } catch (err) {
    throw ioError(err, displayPath(dir), 'list this folder');
  }
}

/** What the scan found: the classes, the candidate files, and the entries it skipped. */
interface Scan {
  root: string;
  layout: 'classes' | 'splits';
  classNames: string[];
  files: Candidate[];
  skipped: SkippedFile[];
}

/**
 * Walks `root`: the layout, the class folders, and every file with an image extension under them (recursively,
 * symbolic links followed, each real folder once: a link loop ends there). Fatal (ERR_NAS_BAD_DATA): no class folder,
 * one class, more than 256, a class name that is not UTF-8, a class with no image file.
 */
function scan(root: string): Scan {
  let st: fs.Stats;
  try {
    st = fs.statSync(root);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT')
      throw new NasError('ERR_NAS_DATASET_MISSING', `${root}: no such folder (--data-dir: a folder of class folders)`, { path: root });
    throw ioError(err, root, 'read the image folder');
  }
  if (!st.isDirectory()) throw new NasError('ERR_NAS_BAD_DATA', `${root}: expected a folder of class folders, got a file`, { path: root });
  const rootBuf = Buffer.from(path.resolve(root));
  const top = listDir(rootBuf).filter((n) => n[0] !== 0x2e && isDir(join(rootBuf, n)));
  const topNames = top.map((n) => n.toString('utf8'));
  const layout = topNames.includes('train') && topNames.every((n) => n in SPLIT_FOLDERS) ? 'splits' : 'classes';
  const skipped: SkippedFile[] = [];
  const visited = new Set<string>();
  const files: Candidate[] = [];
  const classOf = new Map<string, number>();
  // Class folders per split (the split layout) or of the root.
  const groups: { split?: SplitName; dir: Buffer; label: string }[] = [];
  if (layout === 'splits') {
    if (topNames.includes('val') && topNames.includes('validation'))
      throw new NasError('ERR_NAS_BAD_DATA', `${root}: has both val/ and validation/; keep one`, { path: root });
    for (const n of top) groups.push({ split: SPLIT_FOLDERS[n.toString('utf8')], dir: join(rootBuf, n), label: `${n.toString('utf8')}/` });
  } else {
    groups.push({ dir: rootBuf, label: '' });
  }
  const names = new Set<string>();
  const perGroup: { split?: SplitName; dir: Buffer; name: string }[] = [];
  for (const g of groups) {
    for (const c of listDir(g.dir)) {
      const abs = join(g.dir, c);
      if (c[0] === 0x2e || !isDir(abs)) continue;
      if (!isUtf8(c))
        throw new NasError(
          'ERR_NAS_BAD_DATA',
          `${displayPath(abs)}: a class folder's name must be UTF-8 (it becomes the class name); rename it`,
          { path: displayPath(abs) },
        );
      names.add(c.toString('utf8'));
      perGroup.push({ split: g.split, dir: abs, name: c.toString('utf8') });
    }
  }
  const classNames = [...names].sort();
  if (layout === 'splits') {
    const trainClasses = new Set(perGroup.filter((g) => g.split === 'train').map((g) => g.name));
    const extra = classNames.filter((c) => !trainClasses.has(c));
    if (extra.length)
      throw new NasError(
        'ERR_NAS_BAD_DATA',
        `${root}: class${extra.length > 1 ? 'es' : ''} ${extra.map((c) => `"${c}"`).join(', ')} outside train/ (every class needs training images in train/<class>/)`,
        { path: root },
      );
  }
  if (classNames.length < 2)
    throw new NasError(
      'ERR_NAS_BAD_DATA',
      `${root}: expected at least 2 class folders (${layout === 'splits' ? 'train/<class>/<image>' : '<class>/<image>'}), found ${classNames.length}${classNames.length ? ` (${classNames[0]})` : ''}`,
      { path: root },
    );
  if (classNames.length > MAX_CLASSES)
    throw new NasError('ERR_NAS_BAD_DATA', `${root}: ${classNames.length} class folders; at most ${MAX_CLASSES} are supported`, {
      path: root,
    });
  for (const [i, c] of classNames.entries()) classOf.set(c, i);
  // The root and every split and class folder count as read before the walk: a link inside a class folder back to
  // any of them is skipped instead of filing another class's images under this one.
  for (const d of [rootBuf, ...groups.map((g) => g.dir), ...perGroup.map((g) => g.dir)]) {
    const st = fs.statSync(d);
    visited.add(`${st.dev}:${st.ino}`);
  }
  for (const g of perGroup) {
    const before = files.length;
    walk(g.dir, rootBuf, classOf.get(g.name)!, g.split, files, skipped, visited);
    if (files.length === before && (layout === 'classes' || g.split === 'train'))
      throw new NasError(
        'ERR_NAS_BAD_DATA',
        `${displayPath(g.dir)}: the class folder "${g.name}" has no image files (${IMAGE_EXTENSIONS.join(' ')}); add images or remove the folder`,
        { path: displayPath(g.dir) },
      );
  }
  return { root: rootBuf.toString('utf8'), layout, classNames, files, skipped };
}

function isDir(p: Buffer): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function walk(
  dir: Buffer,
  root: Buffer,
  cls: number,
  split: SplitName | undefined,
  out: Candidate[],
  skipped: SkippedFile[],
  visited: Set<string>,
  top = true,
): void {
  let st: fs.Stats;
  try {
    st = fs.statSync(dir);
  } catch (err) {
    skipped.push({ file: displayPath(dir).slice(root.length + 1), reason: ioError(err, '', 'read').message.replace(/^: /, '') });
    return;
  }
  const id = `${st.dev}:${st.ino}`;
  if (visited.has(id) && !top) {
    skipped.push({
      file: displayPath(dir).slice(root.length + 1),
      reason: 'a folder already read (a symbolic link loop or a second link to it)',
    });
    return;
  }
  visited.add(id);
  for (const name of listDir(dir)) {
    if (name[0] === 0x2e) continue; // hidden: .DS_Store, .git, ...
    const abs = join(dir, name);
    const rel = displayPath(abs).slice(root.length + 1);
    let s: fs.Stats;
    try {
      s = fs.statSync(abs);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      skipped.push({
        file: rel,
        reason: code === 'ELOOP' ? 'a symbolic link loop' : code === 'ENOENT' ? 'a broken symbolic link' : `unreadable (${code})`,
      });
      continue;
    }
    if (s.isDirectory()) {
      walk(abs, root, cls, split, out, skipped, visited, false);
      continue;
    }
    const ext = path.extname(name.toString('latin1')).toLowerCase();
    if (!s.isFile() || !IMAGE_EXTENSIONS.includes(ext)) continue; // not an image by name: ignored, as torchvision does
    out.push({ rel, abs, size: s.size, mtimeMs: Math.floor(s.mtimeMs), cls, split });
  }
}

/** Reads a file's bytes (the path may not be UTF-8, so sharp is handed the bytes, not the name). */
function readBytes(abs: Buffer): Buffer {
  return fs.readFileSync(abs);
}

type Sharp = typeof import('sharp');
let sharpModule: Sharp | undefined;
function loadSharp(): Sharp {
  if (!sharpModule) {
    try {
      sharpModule = require('sharp') as Sharp;
    } catch (err) {
      throw new NasError(
        'ERR_NAS_NATIVE',
        `sharp (the image decoder) could not be loaded: ${(err as Error).message}; reinstall with \`npm install sharp\``,
      );
    }
  }
  return sharpModule;
}

interface Probe {
  grey: boolean;
}

/** Header check of one file: its format, declared size and channels. Returns a reason string when it is skipped. */
async function probe(c: Candidate, maxPixels: number): Promise<Probe | string> {
  const sharp = loadSharp();
  let bytes: Buffer;
  try {
    bytes = readBytes(c.abs);
  } catch (err) {
    return `unreadable (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`;
  }
  if (bytes.length === 0) return 'an empty file';
  try {
    const m = await sharp(bytes, { limitInputPixels: false }).metadata();
    if (!m.format || !m.width || !m.height) return 'not an image sharp can read';
    if (m.width * m.height > maxPixels)
      return `declares ${m.width}x${m.height} pixels, more than the limit of ${maxPixels} (an image bomb?)`;
    return { grey: m.space === 'b-w' || m.space === 'grey16' || (m.channels ?? 3) <= 2 };
  } catch (err) {
    return `not a readable image (${briefSharpError(err)})`;
  }
}

const briefSharpError = (err: unknown): string => ((err as Error).message ?? String(err)).split('\n')[0].slice(0, 160);

/** Decodes one file to `size` x `size` x `channels` uint8 (shorter side resized to `size`, then a centre crop). */
async function decode(abs: Buffer, size: number, channels: number, maxPixels: number): Promise<Buffer | string> {
  const sharp = loadSharp();
  try {
    let img = sharp(readBytes(abs), { limitInputPixels: maxPixels, failOn: 'warning', pages: 1 }).resize(size, size, {
      fit: 'cover',
      position: 'centre',
    });
    img = channels === 1 ? img.toColourspace('b-w') : img.toColourspace('srgb');
    const { data, info } = await img.removeAlpha().raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
    if (info.width !== size || info.height !== size || info.channels !== channels || data.length !== size * size * channels)
      return `decoded to ${info.width}x${info.height}x${info.channels}, expected ${size}x${size}x${channels}`;
    return data;
  } catch (err) {
    return `not a readable image (${briefSharpError(err)})`;
  }
}

/**
 * One image file decoded as an image folder's cache decodes it (shorter side to `size`, centre crop, `channels`):
 * size*size*channels uint8 pixels (NHWC). ERR_NAS_BAD_DATA names a file that is not a readable image.
 */
export async function decodeImageFile(file: string, size: number, channels: number, maxPixels = DEFAULTS.maxPixels): Promise<Buffer> {
  let abs: Buffer;
  try {
    abs = Buffer.from(path.resolve(file));
    if (!fs.statSync(abs).isFile()) throw new NasError('ERR_NAS_BAD_DATA', `${file}: not a file`, { path: file });
  } catch (err) {
    throw ioError(err, file, 'read the image');
  }
  const r = await decode(abs, size, channels, maxPixels);
  if (typeof r === 'string') throw new NasError('ERR_NAS_BAD_DATA', `${file}: ${r}`, { path: file });
  return r;
}

/**
 * Image files under `paths`: files as given; folders walked recursively (sorted, hidden entries and files without an
 * image extension left out, each real folder once). A path given that does not exist is ERR_NAS_IO.
 */
export function listImageFiles(paths: string[]): string[] {
  const out: string[] = [];
  const seen = new Set<string>(); // folders read (a link loop ends at the second visit)
  const visit = (p: string, top: boolean): void => {
    let st: fs.Stats;
    try {
      st = fs.statSync(p);
    } catch (err) {
      if (!top) return; // a broken link or a loop inside a folder: not an image file
      throw ioError(err, p, 'read');
    }
    if (st.isDirectory()) {
      if (seen.has(`${st.dev}:${st.ino}`)) return;
      seen.add(`${st.dev}:${st.ino}`);
      const names = fs
        .readdirSync(p)
        .filter((n) => !n.startsWith('.'))
        .sort();
      for (const n of names) visit(path.join(p, n), false);
    } else if (top || IMAGE_EXTENSIONS.includes(path.extname(p).toLowerCase())) {
      out.push(p);
    }
  };
  for (const p of paths) visit(p, true);
  return out;
}

/** Runs `fn` over `items` with at most `limit` at once, results in order. */
async function mapLimit<T, R>(items: T[], limit: number, fn: (t: T, i: number) => Promise<R>, signal?: AbortSignal): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length && !signal?.aborted) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** Seeded stratified split of the classes layout, or the user's splits with the missing ones carved out of train. */
function assignSplits(
  files: Candidate[],
  classes: number,
  o: typeof DEFAULTS,
  root: string,
  classNames: string[],
): Record<SplitName, Candidate[]> {
  const rng = new Rng(o.seed);
  const out: Record<SplitName, Candidate[]> = { train: [], validation: [], test: [] };
  const given = new Set(files.map((f) => f.split).filter((s): s is SplitName => s !== undefined));
  const carve: SplitName[] = (['test', 'validation'] as SplitName[]).filter((s) => !given.has(s));
  for (const f of files) if (f.split && f.split !== 'train') out[f.split].push(f);
  for (let c = 0; c < classes; c++) {
    const mine = files.filter((f) => f.cls === c && (f.split === undefined || f.split === 'train'));
    const need = 1 + carve.length;
    if (mine.length < need)
      throw new NasError(
        'ERR_NAS_BAD_DATA',
        `${root}: class "${classNames[c]}" has ${mine.length} readable training image${mine.length === 1 ? '' : 's'}; it needs at least ${need} (one for training${carve.map((s) => `, one for ${s}`).join('')})`,
        { path: root, class: classNames[c] },
      );
    shuffle(mine, rng);
    const frac = { test: o.testFraction, validation: o.validationFraction };
    let at = 0;
    for (const s of carve) {
      const k = Math.max(1, Math.round(mine.length * frac[s as 'test' | 'validation']));
      out[s].push(...mine.slice(at, at + k));
      at += k;
    }
    if (at >= mine.length) at = mine.length - 1; // at least one training image
    out.train.push(...mine.slice(at));
  }
  // Every split in a seeded order: classes interleaved, so that the first N of a split is a fair sample.
  for (const s of SPLITS) {
    out[s].sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));
    shuffle(out[s], rng);
  }
  return out;
}

function shuffle<T>(a: T[], rng: Rng): void {
  for (let i = a.length - 1; i > 0; i--) {
    const j = rng.below(i + 1);
    [a[i], a[j]] = [a[j], a[i]];
  }
}

/** The cache folder of `root` read with `o`: where it is, and the key that names it. */
export function imageFolderCache(root: string, o: ImageFolderOptions = {}): { dir: string; key: string } {
  checkOptions(o);
  const opts = { ...DEFAULTS, ...stripUndefined(o) };
  const real = realpathOf(root);
  const key = createHash('sha256')
    .update(
      JSON.stringify({
        v: CACHE_VERSION,
        real,
        imageSize: opts.imageSize,
        channels: o.channels ?? 'auto',
        seed: opts.seed,
        val: opts.validationFraction,
        test: opts.testFraction,
        maxPixels: opts.maxPixels,
      }),
    )
    .digest('hex')
    .slice(0, 16);
  const base = path.basename(real).replace(/[^A-Za-z0-9._-]/g, '_') || 'root';
  return { dir: path.join(path.resolve(o.cacheDir ?? defaultCacheDir()), `${base}-${key}`), key };
}

function realpathOf(p: string): string {
  try {
    return fs.realpathSync(p);
  } catch {
    return path.resolve(p);
  }
}

const sameSources = (a: SourceFile[], b: SourceFile[]): boolean =>
  a.length === b.length && a.every((x, i) => x.rel === b[i].rel && x.size === b[i].size && x.mtimeMs === b[i].mtimeMs);

const sourcesOf = (files: Candidate[]): SourceFile[] => files.map(({ rel, size, mtimeMs }) => ({ rel, size, mtimeMs }));

/** The manifest of a published cache, or undefined when there is none (or it is not ours / of another version). */
function readManifest(dir: string): ImageFolderManifest | undefined {
  const file = path.join(dir, 'manifest.json');
  if (!fs.existsSync(file)) return undefined;
  try {
    const m = readJsonFile(file, 'ERR_NAS_BAD_DATA', 'image cache manifest') as ImageFolderManifest;
    return m && m.format === 'oneshot-nas-image-cache/1' && m.version === CACHE_VERSION ? m : undefined;
  } catch {
    return undefined;
  }
}

/** The state of a decode in progress (`<cache>.partial/progress.json`). */
interface Progress {
  key: string;
  sources: SourceFile[];
  channels: number;
  /** Per split: files (indices into sources) in order, how many of them were handled, how many images were written. */
  splits: Record<SplitName, { files: number[]; next: number; written: number }>;
  skipped: SkippedFile[];
  converted: number;
  grey: boolean[];
}

/** What `prepareImageFolder` gives: the cache folder, and its manifest unless the decode was stopped. */
export type PreparedImageFolder =
  | { dir: string; manifest: ImageFolderManifest; cached: boolean; aborted: false }
  | { dir: string; manifest?: undefined; cached: false; aborted: true };

/**
 * Makes sure the cache of `root` (read with `o`) exists and matches the folder: scans, probes, splits and decodes as
 * needed, resuming an interrupted decode. Returns the cache folder and its manifest, or `aborted` when the signal
 * stopped the decode (what was decoded is kept: the next call resumes). Another process preparing the same cache is
 * waited for.
 */
export async function prepareImageFolder(
  root: string,
  o: ImageFolderOptions = {},
  hooks: { onEvent?: (e: ImageFolderEvent) => void; signal?: AbortSignal; concurrency?: number } = {},
): Promise<PreparedImageFolder> {
  const emit = hooks.onEvent ?? ((): void => undefined);
  const { dir, key } = imageFolderCache(root, o);
  const s = scan(root);
  emit({ type: 'scan', files: s.files.length, classes: s.classNames.length });
  const sources = sourcesOf(s.files);
  const fresh = (): ImageFolderManifest | undefined => {
    const m = readManifest(dir);
    return m && m.key === key && sameSources(m.sources, sources) ? m : undefined;
  };
  const ready = (manifest: ImageFolderManifest, cached: boolean): PreparedImageFolder => {
    const counts = { train: manifest.splits.train.n, validation: manifest.splits.validation.n, test: manifest.splits.test.n };
    emit({ type: 'ready', dir, counts, skipped: manifest.skipped.length, cached });
    return { dir, manifest, cached, aborted: false };
  };
  let m = fresh();
  if (m) return ready(m, true);
  makeDir(path.dirname(dir));
  const release = await lockWaiting(dir, emit, hooks.signal);
  try {
    m = fresh(); // another process may have published it while this one waited
    if (m) return ready(m, true);
    m = await build(s, sources, dir, key, { ...DEFAULTS, ...stripUndefined(o) }, o.channels, emit, hooks);
    return m ? ready(m, false) : { dir, aborted: true, cached: false };
  } finally {
    release();
  }
}

async function lockWaiting(dir: string, emit: (e: ImageFolderEvent) => void, signal?: AbortSignal): Promise<() => void> {
  for (let told = false; ; ) {
    try {
      return acquireLock(dir, 'file', `decoding images into ${dir}`);
    } catch (err) {
      if (!(err instanceof NasError) || err.code !== 'ERR_NAS_LOCKED' || signal?.aborted) throw err;
      if (!told) emit({ type: 'wait', holder: err.message });
      told = true;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

async function build(
  s: Scan,
  sources: SourceFile[],
  dir: string,
  key: string,
  o: typeof DEFAULTS,
  channelsWanted: 1 | 3 | undefined,
  emit: (e: ImageFolderEvent) => void,
  hooks: { signal?: AbortSignal; concurrency?: number },
): Promise<ImageFolderManifest | undefined> {
  const partial = `${dir}.partial`;
  const progressFile = path.join(partial, 'progress.json');
  let p: Progress | undefined;
  if (fs.existsSync(progressFile)) {
    try {
      const old = JSON.parse(fs.readFileSync(progressFile, 'utf8')) as Progress;
      if (old.key === key && sameSources(old.sources, sources)) p = old;
    } catch {
      // torn: start over
    }
  }
  const concurrency = hooks.concurrency ?? Math.max(4, 2 * os.availableParallelism());
  if (!p) {
    fs.rmSync(partial, { recursive: true, force: true });
    makeDir(partial);
    // Probe every header first: what is skipped is known before anything is decoded, and a class left with too few
    // images stops the job now, not hours later.
    let done = 0;
    const probes = await mapLimit(
      s.files,
      concurrency,
      async (c) => {
        const r = await probe(c, o.maxPixels);
        if (++done % 256 === 0 || done === s.files.length) emit({ type: 'probe', done, total: s.files.length });
        return r;
      },
      hooks.signal,
    );
    if (hooks.signal?.aborted) return undefined;
    const skipped = [...s.skipped];
    const ok: Candidate[] = [];
    const grey: boolean[] = [];
    s.files.forEach((c, i) => {
      const r = probes[i];
      if (typeof r === 'string') skipped.push({ file: c.rel, reason: r });
      else {
        ok.push(c);
        grey.push(r.grey);
      }
    });
    const channels = channelsWanted ?? (grey.every((g) => g) ? 1 : 3);
    const split = assignSplits(ok, s.classNames.length, o, s.root, s.classNames);
    const index = new Map(s.files.map((c, i) => [c, i]));
    const greyOf = new Map(ok.map((c, i) => [c, grey[i]]));
    p = {
      key,
      sources,
      channels,
      splits: {
        train: { files: split.train.map((c) => index.get(c)!), next: 0, written: 0 },
        validation: { files: split.validation.map((c) => index.get(c)!), next: 0, written: 0 },
        test: { files: split.test.map((c) => index.get(c)!), next: 0, written: 0 },
      },
      skipped,
      converted: 0,
      grey: s.files.map((c) => greyOf.get(c) ?? false),
    };
    writeFileAtomic(progressFile, JSON.stringify(p));
  }
  const per = o.imageSize * o.imageSize * p.channels;
  const total = SPLITS.reduce((a, k) => a + p!.splits[k].files.length, 0);
  let done = SPLITS.reduce((a, k) => a + p!.splits[k].next, 0);
  const resumedAt = done;
  const t0 = Date.now();
  const chunk = Math.max(64, concurrency * 8);
  for (const split of SPLITS) {
    const sp = p.splits[split];
    const pixFile = path.join(partial, `${split}.pixels`);
    const labFile = path.join(partial, `${split}.labels`);
    // What an interrupted decode wrote past its last recorded chunk is cut off.
    const pfd = openAt(pixFile, sp.written * per);
    const lfd = openAt(labFile, sp.written);
    try {
      while (sp.next < sp.files.length) {
        if (hooks.signal?.aborted) return undefined;
        const part = sp.files.slice(sp.next, sp.next + chunk);
        const decoded = await mapLimit(part, concurrency, (i) => decode(s.files[i].abs, o.imageSize, p!.channels, o.maxPixels));
        const labels: number[] = [];
        const bufs: Buffer[] = [];
        decoded.forEach((d, k) => {
          const c = s.files[part[k]];
          if (typeof d === 'string') p!.skipped.push({ file: c.rel, reason: d });
          else {
            bufs.push(d);
            labels.push(c.cls);
            if (p!.grey[part[k]] !== (p!.channels === 1)) p!.converted++;
          }
        });
        writeAll(pfd, Buffer.concat(bufs), sp.written * per, pixFile);
        writeAll(lfd, Buffer.from(labels), sp.written, labFile);
        fs.fdatasyncSync(pfd);
        fs.fdatasyncSync(lfd);
        sp.written += bufs.length;
        sp.next += part.length;
        done += part.length;
        writeFileAtomic(progressFile, JSON.stringify(p));
        const secs = (Date.now() - t0) / 1000;
        emit({ type: 'decode', done, total, resumedAt, imagesPerSec: secs > 0 ? (done - resumedAt) / secs : 0 });
      }
    } finally {
      fs.closeSync(pfd);
      fs.closeSync(lfd);
    }
    if (sp.written === 0)
      throw new NasError(
        'ERR_NAS_BAD_DATA',
        `${s.root}: no ${split} image could be decoded (${sp.files.length} file${sp.files.length === 1 ? '' : 's'} tried; see the reasons in ${progressFile})`,
        { path: s.root },
      );
  }
  // A class whose files all failed to decode (after passing the header check) has nothing to learn from.
  const trainLabels = fs.readFileSync(path.join(partial, 'train.labels'));
  for (let c = 0; c < s.classNames.length; c++) {
    if (!trainLabels.includes(c))
      throw new NasError('ERR_NAS_BAD_DATA', `${s.root}: no training image of class "${s.classNames[c]}" could be decoded`, {
        path: s.root,
      });
  }
  const manifest: ImageFolderManifest = {
    format: 'oneshot-nas-image-cache/1',
    version: CACHE_VERSION,
    source: s.root,
    key,
    layout: s.layout,
    classNames: s.classNames,
    imageSize: o.imageSize,
    channels: p.channels,
    options: {
      imageSize: o.imageSize,
      channels: p.channels as 1 | 3,
      validationFraction: o.validationFraction,
      testFraction: o.testFraction,
      seed: o.seed,
      maxPixels: o.maxPixels,
    },
    sources,
    splits: {
      train: { n: p.splits.train.written, files: decodedFiles(p, 'train') },
      validation: { n: p.splits.validation.written, files: decodedFiles(p, 'validation') },
      test: { n: p.splits.test.written, files: decodedFiles(p, 'test') },
    },
    skipped: p.skipped,
    converted: p.converted,
  };
  writeFileAtomic(path.join(partial, 'manifest.json'), `${JSON.stringify(manifest)}\n`);
  fs.rmSync(progressFile, { force: true });
  publish(partial, dir);
  return manifest;
}

/** The files of a split that were decoded (skipped ones left out), in order. */
function decodedFiles(p: Progress, split: SplitName): number[] {
  const bad = new Set(p.skipped.map((k) => k.file));
  return p.splits[split].files.filter((i) => !bad.has(p.sources[i].rel));
}

function openAt(file: string, length: number): number {
  try {
    const fd = fs.openSync(file, fs.existsSync(file) ? 'r+' : 'w+');
    fs.ftruncateSync(fd, length);
    return fd;
  } catch (err) {
    throw ioError(err, file, 'write the image cache');
  }
}

function writeAll(fd: number, buf: Buffer, at: number, file: string): void {
  try {
    for (let done = 0; done < buf.length; ) done += fs.writeSync(fd, buf, done, buf.length - done, at + done);
  } catch (err) {
    throw ioError(err, file, 'write the image cache');
  }
}

/** Replaces `dir` by `partial` with renames: a reader sees the old cache or the new one, never a mix. */
function publish(partial: string, dir: string): void {
  const old = `${dir}.old-${process.pid}`;
  try {
    if (fs.existsSync(dir)) fs.renameSync(dir, old);
    fs.renameSync(partial, dir);
  } catch (err) {
    throw ioError(err, dir, 'publish the image cache');
  }
  fs.rmSync(old, { recursive: true, force: true });
}

/** The splits of a published cache as file-backed ImageSets (nothing is read but the labels). */
export function readImageFolderCache(dir: string, m: ImageFolderManifest): Record<SplitName, ImageSet> {
  const set = (split: SplitName): ImageSet => {
    const file = path.join(dir, `${split}.pixels`);
    const per = m.imageSize * m.imageSize * m.channels;
    const n = m.splits[split].n;
    let labels: Buffer;
    let size: number;
    try {
      labels = fs.readFileSync(path.join(dir, `${split}.labels`));
      size = fs.statSync(file).size;
    } catch (err) {
      throw ioError(err, path.join(dir, split), 'read the image cache (delete the folder to rebuild it)');
    }
    if (labels.length !== n || size !== n * per)
      throw new NasError(
        'ERR_NAS_BAD_DATA',
        `${file}: ${size} bytes and ${labels.length} labels, the manifest says ${n} images of ${per} bytes; delete ${dir} to rebuild it`,
        { path: file },
      );
    return {
      images: new Uint8Array(0),
      labels,
      n,
      height: m.imageSize,
      width: m.imageSize,
      channels: m.channels,
      file: { path: file, offset: 0 },
    };
  };
  return { train: set('train'), validation: set('validation'), test: set('test') };
}

/**
 * The published, current cache of `root` read with `o`, without decoding anything: undefined when there is none or
 * the folder changed since (then `prepareImageFolder` builds it).
 */
export function currentImageFolderCache(
  root: string,
  o: ImageFolderOptions = {},
): { dir: string; manifest: ImageFolderManifest } | undefined {
  const { dir, key } = imageFolderCache(root, o);
  const m = readManifest(dir);
  if (!m || m.key !== key) return undefined;
  return sameSources(m.sources, sourcesOf(scan(root).files)) ? { dir, manifest: m } : undefined;
}
