// A real OpenID provider (oidc-provider) for tests/oidc_test.sh, on loopback:
//   node provider.mjs serve KEYS_FILE PORT_FILE [PORT]  - serves until killed;
//       writes its port to PORT_FILE once it listens (PORT 0 or absent: any);
//       https with the certificate and key in $OIDC_TLS_CERT, $OIDC_TLS_KEY
//   node provider.mjs rotate KEYS_FILE  - a new signing key, put first; the
//       old ones stay published so the tokens they signed still verify
//   node provider.mjs token ISSUER [RESOURCE]  - a JWT access token for the
//       client "lindra-office" (client_credentials grant)
// Tokens are for the resource urn:lindra:sync, audience "lindra-sync", and
// carry lindra's role claim; RESOURCE urn:lindra:other gets audience "other".
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { createServer } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import Provider from 'oidc-provider';

const [command, ...args] = process.argv.slice(2);
const clientId = 'lindra-office';
const clientSecret = 'a-test-secret-for-loopback-only';

function newKey() {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = privateKey.export({ format: 'jwk' });
  return { ...jwk, kid: `key-${Date.now()}`, alg: 'ES256', use: 'sig' };
}

if (command === 'rotate') {
  const [file] = args;
  const keys = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')).keys : [];
  writeFileSync(file, JSON.stringify({ keys: [newKey(), ...keys] }));
} else if (command === 'serve') {
  const [file, portFile, wanted = '0'] = args;
  const tls = process.env.OIDC_TLS_CERT;
  const server = tls
    ? createTlsServer({ cert: readFileSync(tls), key: readFileSync(process.env.OIDC_TLS_KEY) })
    : createServer();
  server.listen(Number(wanted), '127.0.0.1', () => {
    const issuer = `${tls ? 'https' : 'http'}://127.0.0.1:${server.address().port}`;
    const audiences = { 'urn:lindra:sync': 'lindra-sync', 'urn:lindra:other': 'other' };
    const provider = new Provider(issuer, {
      jwks: JSON.parse(readFileSync(file, 'utf8')),
      clients: [{
        client_id: clientId,
        client_secret: clientSecret,
        grant_types: ['client_credentials'],
        redirect_uris: [],
        response_types: [],
        id_token_signed_response_alg: 'ES256',
      }],
      features: {
        clientCredentials: { enabled: true },
        devInteractions: { enabled: false },
        resourceIndicators: {
          enabled: true,
          defaultResource: () => 'urn:lindra:sync',
          useGrantedResource: () => true,
          getResourceServerInfo: (ctx, resource) => {
            if (!audiences[resource]) throw new Error('unknown resource');
            return {
              scope: 'sync',
              audience: audiences[resource],
              accessTokenTTL: 300,
              accessTokenFormat: 'jwt',
              jwt: { sign: { alg: 'ES256' } },
            };
          },
        },
      },
      // What lindra reads besides the registered claims (README, "OpenID
      // Connect with JWKS"): the role, and a person or organization where
      // the role needs one. The office's client acts as an admin.
      extraTokenClaims: () => ({ lindra_role: 'admin' }),
    });
    server.on('request', provider.callback());
    writeFileSync(portFile, String(server.address().port));
  });
} else if (command === 'token') {
  const [issuer, resource = 'urn:lindra:sync'] = args;
  const response = await fetch(`${issuer}/token`, {
    method: 'POST',
    headers: {
      authorization: 'Basic ' + Buffer.from(`${clientId}:${clientSecret}`).toString('base64'),
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'sync', resource }),
  });
  const body = await response.json();
  if (!response.ok || !body.access_token) {
    console.error(`the provider refused a token: ${JSON.stringify(body)}`);
    process.exit(1);
  }
  console.log(body.access_token);
} else {
  console.error('usage: provider.mjs serve KEYS_FILE PORT_FILE [PORT] | rotate KEYS_FILE | token ISSUER [RESOURCE]');
  process.exit(2);
}
