// The storage backends registry-level tests run against: the filesystem and a real S3 (RGW).
import { freshBucket } from './rgw.js';

export interface Backend {
  name: 'filesystem' | 's3';
  /** REGISTRY_* variables selecting this backend, and how to clean up after it. */
  prepare(): Promise<{ env: Record<string, string>; cleanup(): Promise<void> }>;
}

export const BACKENDS: Backend[] = [
  { name: 'filesystem', prepare: async () => ({ env: {}, cleanup: async () => undefined }) },
  {
    name: 's3',
    prepare: async () => {
      const b = await freshBucket('berth-registry');
      return {
        env: {
          REGISTRY_STORAGE: 's3',
          REGISTRY_STORAGE_S3_BUCKET: b.bucket,
          REGISTRY_STORAGE_S3_REGION: b.endpoint.region,
          REGISTRY_STORAGE_S3_REGIONENDPOINT: b.endpoint.endpoint,
          REGISTRY_STORAGE_S3_FORCEPATHSTYLE: 'true',
          REGISTRY_STORAGE_S3_ACCESSKEY: b.endpoint.accessKeyId,
          REGISTRY_STORAGE_S3_SECRETKEY: b.endpoint.secretAccessKey,
        },
        cleanup: () => b.cleanup(),
      };
    },
  },
];
