// Test data for test/e2e/conformance.test.ts, built the way the OCI distribution-spec conformance
// suites build theirs:
//  - Part A: the Ginkgo suite of v1.1.x (conformance/setup.go + image.go): tab-indented
//    json.MarshalIndent documents with "newUnspecifiedField", the fixed 168-byte tar.gz layer, …
//  - Part B: the rewritten suite on main (conformance/testdata.go + run.go GenerateData): compact
//    json.Marshal documents of image-spec types, random layers/blobs, the data sets of §10.5.
// Exact bytes differ from a Go run (random content, Go's own tar/gzip writers); the shapes match.
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { gzipSync } from 'node:zlib';

export type Algo = 'sha256' | 'sha512';

export function digestOf(data: Buffer | string, algo: Algo = 'sha256'): string {
  return `${algo}:${createHash(algo).update(data).digest('hex')}`;
}

export const MT = {
  image: 'application/vnd.oci.image.manifest.v1+json',
  index: 'application/vnd.oci.image.index.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layer: 'application/vnd.oci.image.layer.v1.tar',
  layerGz: 'application/vnd.oci.image.layer.v1.tar+gzip',
  layerPre: 'application/vnd.oci.image.layer.v1.',
  layerNd: 'application/vnd.oci.image.layer.nondistributable.v1.tar',
  layerNdGz: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  emptyJSON: 'application/vnd.oci.empty.v1+json',
  octet: 'application/octet-stream',
  exampleConf1: 'application/vnd.example.oci.conformance.v1',
  exampleConf2: 'application/vnd.example.oci.conformance.v2',
} as const;

/** Go's json.MarshalIndent(v, "", "\t") has the same layout as JSON.stringify(v, null, '\t'). */
const marshalIndent = (v: unknown): Buffer => Buffer.from(JSON.stringify(v, null, '\t'));
/** Go's json.Marshal: compact. */
const marshal = (v: unknown): Buffer => Buffer.from(JSON.stringify(v));

/** crypto/rand.Text(): 26 base32 characters. */
export function randText(): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let s = '';
  for (let i = 0; i < 26; i++) s += alphabet[randomInt(alphabet.length)];
  return s;
}

// ───────────────────────────────── Part A (Ginkgo v1.1.x) ─────────────────────────────────

export interface TestBlob { content: Buffer; length: string; digest: string }

const blob = (content: Buffer): TestBlob => ({ content, length: String(content.length), digest: digestOf(content) });

/** setup.go layerBase64String: `tar czvf test.tar.gz test.txt` (168 bytes). */
const LAYER_BASE64 = 'H4sIAAAAAAAAA+3OQQrCMBCF4a49xXgBSUnaHMCTRBptQRNpp6i3t0UEV7oqIv7fYgbmzeJpHHSjVy0'
  + 'WZCa1c/MufWVe94N3RWlrZ72x3k/30nhbFWKWLPU0Dhp6keJ8im//PuU/6pZH2WVtYx8b0Sz7LjWSR5VLG6YRBumSzOlGtjkd+qD'
  + 'jMWiX07Befbs7AAAAAAAAAAAAAAAAAPyzO34MnqoAKAAA';

/** image.go `descriptor`: mediaType, digest, size, urls?, annotations?, data?, platform?, artifactType?, newUnspecifiedField (no omitempty → null). */
interface ADescriptor {
  mediaType: string; digest: string; size: number;
  data?: Buffer; artifactType?: string; newUnspecifiedField?: Buffer;
}
function aDesc(d: ADescriptor): Record<string, unknown> {
  const o: Record<string, unknown> = { mediaType: d.mediaType, digest: d.digest, size: d.size };
  if (d.data) o.data = d.data.toString('base64');
  if (d.artifactType) o.artifactType = d.artifactType;
  o.newUnspecifiedField = d.newUnspecifiedField ? d.newUnspecifiedField.toString('base64') : null;
  return o;
}
/** image.go `manifest`: schemaVersion, mediaType?, artifactType?, config, layers, subject?, annotations? */
function aManifest(m: {
  mediaType?: string; artifactType?: string; config: ADescriptor; layers: ADescriptor[];
  subject?: ADescriptor; annotations?: Record<string, string>;
}): Buffer {
  const o: Record<string, unknown> = { schemaVersion: 2 };
  if (m.mediaType) o.mediaType = m.mediaType;
  if (m.artifactType) o.artifactType = m.artifactType;
  o.config = aDesc(m.config);
  o.layers = m.layers.map(aDesc);
  if (m.subject) o.subject = aDesc(m.subject);
  if (m.annotations) o.annotations = m.annotations;
  return marshalIndent(o);
}

/** setup.go randomString(16). */
function randomString(n: number): string {
  const letters = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-';
  let s = '';
  for (let i = 0; i < n; i++) s += letters[randomInt(letters.length)];
  return s;
}

export interface ChunkedBlob {
  blob: Buffer; digest: string;
  chunk1: Buffer; chunk1Range: string; chunk1Length: string;
  chunk2: Buffer; chunk2Range: string; chunk2Length: string;
}

/** setup.go setupChunkedBlob(size): chunk1 = B[:size/2+1], chunk2 = the rest; ranges without "bytes". */
export function chunkedBlob(size: number): ChunkedBlob {
  const b = randomBytes(size);
  const cut = Math.floor(size / 2) + 1;
  return {
    blob: b, digest: digestOf(b),
    chunk1: b.subarray(0, cut), chunk1Range: `0-${cut - 1}`, chunk1Length: String(cut),
    chunk2: b.subarray(cut), chunk2Range: `${cut}-${size - 1}`, chunk2Length: String(size - cut),
  };
}

export interface PartAData {
  configs: TestBlob[];
  manifests: TestBlob[];
  layer: TestBlob;
  emptyLayerManifest: TestBlob;
  testBlobA: TestBlob;
  testBlobB: ChunkedBlob;
  dummyDigest: string;
  nonexistentManifest: string;
  invalidManifestContent: Buffer;
  emptyJSON: TestBlob;
  testRefBlobA: TestBlob;
  testRefBlobB: TestBlob;
  testRefArtifactTypeA: string;
  testRefArtifactTypeB: string;
  testRefArtifactTypeIndex: string;
  testAnnotationKey: string;
  /** referrer digest → its annotation value */
  testAnnotationValues: Map<string, string>;
  refsManifestAConfigArtifact: TestBlob;
  refsManifestBConfigArtifact: TestBlob;
  refsManifestALayerArtifact: TestBlob;
  refsManifestBLayerArtifact: TestBlob;
  refsManifestCLayerArtifact: TestBlob;
  refsIndexArtifact: TestBlob;
  errorCodes: string[];
}

export function generatePartA(): PartAData {
  const numWorkflows = 16; // `1 << iota` after pull, push, contentDiscovery, contentManagement
  const configs: TestBlob[] = [];
  for (let i = 0; i < numWorkflows; i++) {
    configs.push(blob(marshalIndent({
      author: randomString(16), architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] },
    })));
  }
  const layer = blob(Buffer.from(LAYER_BASE64, 'base64'));
  const layers: ADescriptor[] = [{ mediaType: MT.layerGz, size: layer.content.length, digest: layer.digest }];
  const configDesc = (c: TestBlob): ADescriptor => ({
    mediaType: MT.config, digest: c.digest, size: c.content.length,
    data: c.content, newUnspecifiedField: Buffer.from('hello world'),
  });
  const manifests = configs.map((c) => blob(aManifest({ mediaType: MT.image, config: configDesc(c), layers })));
  // no mediaType field, no layers
  const emptyLayerManifest = blob(aManifest({ config: configDesc(configs[1]!), layers: [] }));

  const emptyJSON = blob(Buffer.from('{}'));
  const emptyJSONDescriptor: ADescriptor = { mediaType: MT.emptyJSON, size: 2, digest: emptyJSON.digest };
  const testRefBlobA = blob(Buffer.from('NHL Peanut Butter on my NHL bagel'));
  const testRefBlobB = blob(Buffer.from('NBA Strawberry Jam on my NBA croissant'));
  const typeA = 'application/vnd.nhl.peanut.butter.bagel';
  const typeB = 'application/vnd.nba.strawberry.jam.croissant';
  const typeIndex = 'application/vnd.food.stand';
  const key = 'org.opencontainers.conformance.test';
  const values = new Map<string, string>();
  const subjectOf = (m: TestBlob): ADescriptor => ({ mediaType: MT.image, size: m.content.length, digest: m.digest });
  const ref = (m: Parameters<typeof aManifest>[0]): TestBlob => {
    const b = blob(aManifest(m));
    if (m.annotations?.[key] !== undefined) values.set(b.digest, m.annotations[key]);
    return b;
  };
  const refsManifestAConfigArtifact = ref({
    mediaType: MT.image, config: { mediaType: typeA, size: testRefBlobA.content.length, digest: testRefBlobA.digest },
    subject: subjectOf(manifests[4]!), layers: [emptyJSONDescriptor], annotations: { [key]: 'test config a' },
  });
  const refsManifestBConfigArtifact = ref({
    mediaType: MT.image, config: { mediaType: typeB, size: testRefBlobB.content.length, digest: testRefBlobB.digest },
    subject: subjectOf(manifests[4]!), layers: [emptyJSONDescriptor], annotations: { [key]: 'test config b' },
  });
  const refsManifestALayerArtifact = ref({
    mediaType: MT.image, artifactType: typeA, config: emptyJSONDescriptor, subject: subjectOf(manifests[4]!),
    layers: [{ mediaType: typeA, size: testRefBlobA.content.length, digest: testRefBlobA.digest }],
    annotations: { [key]: 'test layer a' },
  });
  const refsManifestBLayerArtifact = ref({
    mediaType: MT.image, artifactType: typeB, config: emptyJSONDescriptor, subject: subjectOf(manifests[4]!),
    layers: [{ mediaType: typeB, size: testRefBlobB.content.length, digest: testRefBlobB.digest }],
    annotations: { [key]: 'test layer b' },
  });
  // same as B but its subject (manifests[3]) has not been pushed; no annotations
  const refsManifestCLayerArtifact = ref({
    mediaType: MT.image, artifactType: typeB, config: emptyJSONDescriptor, subject: subjectOf(manifests[3]!),
    layers: [{ mediaType: typeB, size: testRefBlobB.content.length, digest: testRefBlobB.digest }],
  });
  // image.go `index`: schemaVersion, mediaType?, artifactType?, manifests, subject?, annotations?
  const refsIndexArtifact = blob(marshalIndent({
    schemaVersion: 2, mediaType: MT.index, artifactType: typeIndex,
    manifests: [
      aDesc({ mediaType: MT.image, size: refsManifestAConfigArtifact.content.length, digest: refsManifestAConfigArtifact.digest }),
      aDesc({ mediaType: MT.image, size: refsManifestALayerArtifact.content.length, digest: refsManifestALayerArtifact.digest }),
    ],
    subject: aDesc(subjectOf(manifests[4]!)),
    annotations: { [key]: 'test index' },
  }));
  values.set(refsIndexArtifact.digest, 'test index');

  return {
    configs, manifests, layer, emptyLayerManifest,
    testBlobA: blob(randomBytes(42)),
    testBlobB: chunkedBlob(42),
    dummyDigest: digestOf('hello world'),
    nonexistentManifest: '.INVALID_MANIFEST_NAME',
    invalidManifestContent: Buffer.from('blablabla'),
    emptyJSON, testRefBlobA, testRefBlobB,
    testRefArtifactTypeA: typeA, testRefArtifactTypeB: typeB, testRefArtifactTypeIndex: typeIndex,
    testAnnotationKey: key, testAnnotationValues: values,
    refsManifestAConfigArtifact, refsManifestBConfigArtifact, refsManifestALayerArtifact,
    refsManifestBLayerArtifact, refsManifestCLayerArtifact, refsIndexArtifact,
    errorCodes: ['BLOB_UNKNOWN', 'BLOB_UPLOAD_INVALID', 'BLOB_UPLOAD_UNKNOWN', 'DIGEST_INVALID', 'MANIFEST_BLOB_UNKNOWN',
      'MANIFEST_INVALID', 'MANIFEST_UNKNOWN', 'MANIFEST_UNVERIFIED', 'NAME_INVALID', 'NAME_UNKNOWN', 'SIZE_INVALID',
      'TAG_INVALID', 'UNAUTHORIZED', 'DENIED', 'UNSUPPORTED'],
  };
}

// ───────────────────────────────── Part B (rewritten suite) ─────────────────────────────────

export interface Platform { architecture: string; os: string }

/** image-spec v1 Descriptor (Go field order). */
export interface Descriptor {
  mediaType: string; digest: string; size: number;
  urls?: string[]; annotations?: Record<string, string>; data?: string;
  platform?: Platform; artifactType?: string;
}

function descJSON(d: Descriptor): Record<string, unknown> {
  const o: Record<string, unknown> = { mediaType: d.mediaType, digest: d.digest, size: d.size };
  if (d.urls?.length) o.urls = d.urls;
  if (d.annotations && Object.keys(d.annotations).length) o.annotations = sortKeys(d.annotations);
  if (d.data) o.data = d.data;
  if (d.platform) o.platform = { architecture: d.platform.architecture, os: d.platform.os };
  if (d.artifactType) o.artifactType = d.artifactType;
  return o;
}

/** Go marshals maps with sorted keys. */
function sortKeys(m: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(m).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** genAddJSONFields: one extra top-level "org.<rand>" string field after the real ones. */
function withExtraField(o: Record<string, unknown>, extra: boolean): Record<string, unknown> {
  return extra ? { ...o, [`org.${randText()}`]: randText() } : o;
}

export interface GenOpts {
  algo: Algo;
  annotations: Record<string, string>;
  annotationUniq: boolean;
  artifactType: string;
  blobSize: number;
  comp: 'gzip' | 'none';
  configBytes: Buffer;
  configMediaType: string;
  descriptorMediaType: string;
  extraField: boolean;
  layerBytes: Buffer;
  layerCount: number;
  layerMediaType: string;
  platform: Platform;
  platforms: (Platform | undefined)[];
  setData: boolean;
  subject: Descriptor;
  tag: string;
}
export type GenOpt = Partial<GenOpts>;
const apply = <T extends object>(defaults: T, opts: GenOpt[]): T & GenOpt => Object.assign({}, defaults, ...opts);

/** A minimal ustar archive with one regular file. */
function tarOne(name: string, content: Buffer): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0, 100);
  h.write('0000644\0', 100);
  h.write('0000000\0', 108);
  h.write('0000000\0', 116);
  h.write(`${content.length.toString(8).padStart(11, '0')}\0`, 124);
  h.write('00000000000\0', 136);
  h.write('        ', 148);
  h.write('0', 156);
  h.write('ustar\0', 257);
  h.write('00', 263);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  return Buffer.concat([h, content, Buffer.alloc((512 - (content.length % 512)) % 512), Buffer.alloc(1024)]);
}

/** conformance/testdata.go testData. */
export class TestData {
  tags = new Map<string, string>();
  tagPushed = new Set<string>();
  desc = new Map<string, Descriptor>();
  blobs = new Map<string, Buffer>();
  manifests = new Map<string, Buffer>();
  manOrder: string[] = [];
  referrers = new Map<string, Descriptor[]>();
  /** pullOpts SkipPullTest */
  skipPull = new Set<string>();
  /** pushOpts ExpectBadDigest */
  expectBadDigest = new Set<string>();
  /** pushOpts TagParam */
  tagParam = new Set<string>();

  constructor(readonly name: string) {}

  addBlob(b: Buffer, ...opts: GenOpt[]): string {
    const o = apply({ algo: 'sha256' as Algo, descriptorMediaType: MT.octet as string }, opts);
    const dig = digestOf(b, o.algo);
    this.blobs.set(dig, b);
    this.desc.set(dig, { mediaType: o.descriptorMediaType, digest: dig, size: b.length, ...(o.setData ? { data: b.toString('base64') } : {}) });
    return dig;
  }

  genBlob(...opts: GenOpt[]): [string, Buffer] {
    const o = apply({ blobSize: 2048 }, opts);
    const b = randomBytes(o.blobSize);
    return [this.addBlob(b, ...opts), b];
  }

  /** → [compressed digest, uncompressed digest] */
  genLayer(fileNum: number, ...opts: GenOpt[]): [string, string] {
    const o = apply({ comp: 'gzip' as 'gzip' | 'none', algo: 'sha256' as Algo }, opts);
    const file = `Conformance test file contents for file number ${fileNum}.\nTodays lucky number is ${randomInt(2 ** 47)}\n`;
    const tar = tarOne(`./conformance-${fileNum}.txt`, Buffer.from(file));
    const body = o.comp === 'gzip' ? gzipSync(tar) : tar;
    const mt = o.comp === 'gzip' ? MT.layerGz : MT.layer;
    const digC = digestOf(body, o.algo);
    const digUC = digestOf(tar, o.algo);
    this.blobs.set(digC, body);
    this.desc.set(digC, { mediaType: mt, digest: digC, size: body.length, ...(o.setData ? { data: body.toString('base64') } : {}) });
    this.desc.set(digUC, { mediaType: MT.layer, digest: digUC, size: tar.length });
    return [digC, digUC];
  }

  genConfig(p: Platform, layers: string[], ...opts: GenOpt[]): string {
    const o = apply({ algo: 'sha256' as Algo, configMediaType: MT.config as string }, opts);
    const body = marshal(withExtraField({
      author: 'OCI Conformance Test', architecture: p.architecture, os: p.os, config: {},
      rootfs: { type: 'layers', diff_ids: layers },
    }, Boolean(o.extraField)));
    const dig = digestOf(body, o.algo);
    this.blobs.set(dig, body);
    this.desc.set(dig, { mediaType: o.configMediaType, digest: dig, size: body.length, ...(o.setData ? { data: body.toString('base64') } : {}) });
    return dig;
  }

  genManifest(conf: Descriptor, layers: Descriptor[], ...opts: GenOpt[]): [string, Buffer] {
    const o = apply({ algo: 'sha256' as Algo }, opts);
    let annotations = o.annotations;
    if (o.annotationUniq) annotations = { ...(annotations ?? {}), [`org.example.${randText()}`]: randText() };
    const m: Record<string, unknown> = { schemaVersion: 2, mediaType: MT.image };
    if (o.artifactType) m.artifactType = o.artifactType;
    m.config = descJSON(conf);
    m.layers = layers.map(descJSON);
    if (o.subject) m.subject = descJSON(o.subject);
    if (annotations && Object.keys(annotations).length) m.annotations = sortKeys(annotations);
    const body = marshal(withExtraField(m, Boolean(o.extraField)));
    const dig = digestOf(body, o.algo);
    this.manifests.set(dig, body);
    this.manOrder.push(dig);
    this.desc.set(dig, { mediaType: MT.image, digest: dig, size: body.length, ...(o.setData ? { data: body.toString('base64') } : {}) });
    if (o.subject) {
      this.addReferrer(o.subject.digest, {
        mediaType: MT.image, artifactType: o.artifactType || conf.mediaType, digest: dig, size: body.length, annotations,
      });
    }
    if (o.tag) this.tags.set(o.tag, dig);
    return [dig, body];
  }

  genManifestFull(...opts: GenOpt[]): string {
    const o = apply({ layerCount: 2, platform: { os: 'linux', architecture: 'amd64' } as Platform }, opts);
    const digC: string[] = [];
    const digUC: string[] = [];
    for (let l = 0; l < o.layerCount; l++) {
      if (!o.layerMediaType || o.layerMediaType.startsWith(MT.layerPre)) {
        const [c, uc] = this.genLayer(l, ...opts);
        digC.push(c);
        digUC.push(uc);
      } else {
        const lOpts: GenOpt[] = [{ descriptorMediaType: o.layerMediaType }, ...opts];
        const dig = o.layerBytes ? this.addBlob(o.layerBytes, ...lOpts) : this.genBlob(...lOpts)[0];
        digC.push(dig);
        digUC.push(dig);
      }
    }
    let cDig: string;
    if (!o.configMediaType || o.configMediaType === MT.config) {
      cDig = this.genConfig(o.platform, digUC, ...opts);
    } else {
      cDig = this.addBlob(o.configBytes ?? Buffer.alloc(0), { descriptorMediaType: o.configMediaType }, ...opts);
    }
    const layers = digC.map((d) => this.desc.get(d)!);
    return this.genManifest(this.desc.get(cDig)!, layers, ...opts)[0];
  }

  genIndex(platforms: (Platform | undefined)[], manifests: string[], ...opts: GenOpt[]): [string, Buffer] {
    const o = apply({ algo: 'sha256' as Algo }, opts);
    let annotations = o.annotations;
    if (o.annotationUniq) annotations = { ...(annotations ?? {}), [`org.example.${randText()}`]: randText() };
    const ind: Record<string, unknown> = { schemaVersion: 2, mediaType: MT.index };
    if (o.artifactType) ind.artifactType = o.artifactType;
    ind.manifests = manifests.map((d, i) => descJSON({ ...this.desc.get(d)!, platform: platforms[i] }));
    if (o.subject) ind.subject = descJSON(o.subject);
    if (annotations && Object.keys(annotations).length) ind.annotations = sortKeys(annotations);
    const body = marshal(withExtraField(ind, Boolean(o.extraField)));
    const dig = digestOf(body, o.algo);
    this.manifests.set(dig, body);
    this.manOrder.push(dig);
    this.desc.set(dig, { mediaType: MT.index, digest: dig, size: body.length, ...(o.setData ? { data: body.toString('base64') } : {}) });
    if (o.subject) {
      this.addReferrer(o.subject.digest, {
        mediaType: MT.index, artifactType: o.artifactType, digest: dig, size: body.length, annotations,
      });
    }
    if (o.tag) this.tags.set(o.tag, dig);
    return [dig, body];
  }

  genIndexFull(...opts: GenOpt[]): string {
    const o = apply({
      platforms: [{ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm64' }] as (Platform | undefined)[],
    }, opts);
    const imgs = o.platforms.map((p) => this.genManifestFull({ platform: p }, ...opts));
    return this.genIndex(o.platforms, imgs, ...opts)[0];
  }

  private addReferrer(subject: string, d: Descriptor): void {
    const list = this.referrers.get(subject) ?? [];
    list.push(d);
    this.referrers.set(subject, list);
  }
}

const PLATFORMS: Platform[] = [{ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm64' }];

/** run.go GenerateData (defaults + OCI_DATA_SHA512 + OCI_API_MANIFESTS_TAG_PARAM, sparse off), in run order. */
export function generatePartB(opts: { tagParam: boolean; sha512: boolean }): TestData[] {
  const out: TestData[] = [];
  const td = (name: string): TestData => { const d = new TestData(name); out.push(d); return d; };
  const conformanceAnnotation = { 'org.opencontainers.conformance': 'hello conformance test' };

  td('image').genManifestFull({ tag: 'image' });
  td('image-uncompressed').genManifestFull({ tag: 'image-uncompressed', comp: 'none' });
  {
    const large: Record<string, string> = {};
    for (let i = 0; i < 390; i++) large[`large-annotation-${i}`] = 'A'.repeat(10000);
    td('large-manifest').genManifestFull({ tag: 'large-manifest', annotations: large });
  }
  td('index').genIndexFull({ tag: 'index', platforms: PLATFORMS });
  {
    const d = td('nested-index');
    const d1 = d.genIndexFull({ platforms: PLATFORMS });
    const d2 = d.genIndexFull({ platforms: PLATFORMS });
    d.genIndex([undefined, undefined], [d1, d2], { tag: 'index-of-index' });
  }
  td('empty-index').genIndexFull({ tag: 'index', platforms: [] });
  const artifactOpts: GenOpt = {
    artifactType: MT.exampleConf1, configMediaType: MT.emptyJSON, configBytes: Buffer.from('{}'),
    layerCount: 1, layerMediaType: MT.exampleConf1,
  };
  td('artifact').genManifestFull({ tag: 'artifact', ...artifactOpts });
  td('artifact-index').genIndexFull({ tag: 'artifact-index', platforms: PLATFORMS, ...artifactOpts });
  td('artifact-without-layers').genManifestFull({
    tag: 'artifact-without-layers', ...artifactOpts, layerBytes: Buffer.from('{}'), layerMediaType: MT.emptyJSON,
  });
  {
    const d = td('artifacts-with-subject');
    const subj = d.desc.get(d.genManifestFull({ tag: 'image' }))!;
    d.genManifestFull({ subject: subj });
    d.genManifestFull({ ...artifactOpts, annotations: conformanceAnnotation, annotationUniq: true, subject: subj, tag: 'tagged-artifact1' });
    d.genManifestFull({
      ...artifactOpts, artifactType: MT.exampleConf2, layerMediaType: MT.octet,
      annotations: conformanceAnnotation, annotationUniq: true, subject: subj, tag: 'tagged-artifact2',
    });
  }
  {
    const d = td('index-with-subject');
    const subj = d.desc.get(d.genIndexFull({ tag: 'index' }))!;
    d.genIndexFull({ ...artifactOpts, annotations: conformanceAnnotation, annotationUniq: true, subject: subj, tag: 'tagged-artifact' });
  }
  td('missing-subject').genManifestFull({
    ...artifactOpts, annotations: conformanceAnnotation, annotationUniq: true, tag: 'tagged-artifact',
    subject: { mediaType: MT.image, size: 123, digest: digestOf('missing content') },
  });
  td('data-field').genManifestFull({ tag: 'data-field', setData: true });
  {
    const d = td('non-distributable-layers');
    const confDig: string[] = [digestOf(randomBytes(256))];
    let dig = digestOf(randomBytes(256));
    const layers: Descriptor[] = [{
      mediaType: MT.layerNdGz, digest: dig, size: 123456, urls: [`https://store.example.com/blobs/sha256/${dig.slice(7)}`],
    }];
    dig = digestOf(randomBytes(256));
    confDig.push(dig);
    layers.push({ mediaType: MT.layerNd, digest: dig, size: 12345, urls: [`https://store.example.com/blobs/sha256/${dig.slice(7)}`] });
    const [c, uc] = d.genLayer(1);
    confDig.push(uc);
    layers.push(d.desc.get(c)!);
    const cDig = d.genConfig({ os: 'linux', architecture: 'amd64' }, confDig);
    d.genManifest(d.desc.get(cDig)!, layers, { tag: 'non-distributable-image' });
  }
  td('custom-fields').genIndexFull({ tag: 'custom-fields', platforms: PLATFORMS, extraField: true });
  td('no-layers').genManifestFull({ tag: 'no-layers', layerCount: 0 });
  if (opts.sha512) td('sha512').genIndexFull({ algo: 'sha512' });
  const tagParamSet = (name: string, algo: Algo): void => {
    const d = td(name);
    d.genIndexFull({ tag: name, algo }); // the top-level index ends up with two tags
    d.manOrder.forEach((dig, i) => {
      d.tags.set(`${name}-${i}`, dig);
      d.tagParam.add(dig);
    });
  };
  if (opts.tagParam) tagParamSet('tag-param-sha256', 'sha256');
  if (opts.tagParam && opts.sha512) tagParamSet('tag-param-sha512', 'sha512');
  {
    const d = td('bad-digest-image');
    const dig = d.genManifestFull();
    d.skipPull.add(dig);
    d.expectBadDigest.add(dig);
    d.manifests.set(dig, Buffer.concat([d.manifests.get(dig)!, Buffer.from('  ')])); // digest no longer matches
  }
  return out;
}
