// The conformance replica with token auth on: every request authenticates the way the suites do with
// OCI_USERNAME/OCI_PASSWORD (401 → token from the realm with Basic credentials → retry).
process.env.BERTH_CONFORMANCE_AUTH = 'token';
await import('./conformance.test.js');
