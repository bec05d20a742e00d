// The same conformance replica (push, pull, chunked, mount, delete, referrers, tags…) with the
// registry on S3: a real Ceph RGW started by scripts/rgw.sh.
process.env.BERTH_CONFORMANCE_BACKEND = 's3';
await import('./conformance.test.js');
