// The token signature algorithms berth accepts at all: asymmetric only, so a public key given to
// verify tokens can never be used as an HMAC secret to forge them.
export const ALLOWED_ALGORITHMS = ['ES256', 'ES384', 'ES512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'EdDSA'];
