// A real OpenID Connect provider on loopback, for the sign-in tests only.
//
//   node provider.mjs PORT
//
// Settings come from the environment:
//   OIDC_TEST_CLIENT_ID, OIDC_TEST_CLIENT_SECRET  the one confidential client
//   OIDC_TEST_REDIRECT_URIS                       its redirect URIs, comma-separated
//   OIDC_TEST_ACCOUNTS                            optional JSON {"login": {claims}} to start with
//
// The development login form signs in whoever types a login the store knows
// (any password); the login is the account's `sub`. A test adds accounts with
// the claims it wants (email, email_verified, name) by POSTing JSON to
// /_test/accounts. Once listening, one line goes to stdout: "ready <issuer>".

import http from 'node:http';
import process from 'node:process';

import Provider from 'oidc-provider';

const port = Number(process.argv[2] || process.env.OIDC_TEST_PORT || 0);
const host = '127.0.0.1';
const clientId = process.env.OIDC_TEST_CLIENT_ID || 'portal';
const clientSecret = process.env.OIDC_TEST_CLIENT_SECRET || 'portal-test-client-secret';
const redirectUris = (process.env.OIDC_TEST_REDIRECT_URIS || '')
  .split(',')
  .map((uri) => uri.trim())
  .filter(Boolean);

if (redirectUris.length === 0) {
  process.stderr.write('OIDC_TEST_REDIRECT_URIS must list at least one redirect URI\n');
  process.exit(2);
}

// login -> claims; `sub` is always the login itself.
const accounts = new Map(Object.entries(JSON.parse(process.env.OIDC_TEST_ACCOUNTS || '{}')));

function findAccount(ctx, id) {
  const claims = accounts.get(id);
  if (!claims) {
    return undefined;
  }
  return {
    accountId: id,
    async claims() {
      return { ...claims, sub: id };
    },
  };
}

function readJson(request) {
  return new Promise((resolve, reject) => {
    let body = '';
    request.setEncoding('utf8');
    request.on('data', (chunk) => {
      body += chunk;
    });
    request.on('end', () => {
      try {
        resolve(JSON.parse(body));
      } catch (error) {
        reject(error);
      }
    });
    request.on('error', reject);
  });
}

async function addAccount(request, response) {
  try {
    const { login, ...claims } = await readJson(request);
    if (typeof login !== 'string' || login === '') {
      throw new Error('"login" is required');
    }
    accounts.set(login, claims);
    response.writeHead(201, { 'content-type': 'application/json' });
    response.end(JSON.stringify({ login }));
  } catch (error) {
    response.writeHead(400, { 'content-type': 'application/json' });
    response.end(JSON.stringify({ error: String(error.message || error) }));
  }
}

async function main() {
  // Bind first, so the issuer carries the port even when the OS picks it.
  const server = http.createServer();
  await new Promise((resolve) => {
    server.listen(port, host, resolve);
  });
  const issuer = `http://${host}:${server.address().port}`;

  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        redirect_uris: redirectUris,
        grant_types: ['authorization_code'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name'],
    },
    findAccount,
    features: {
      devInteractions: { enabled: true },
    },
    // Loopback over plain HTTP: no secure cookies.
    cookies: { keys: ['portal-test-cookie-key'] },
  });
  provider.proxy = false;

  const handle = provider.callback();
  server.on('request', (request, response) => {
    if (request.method === 'POST' && request.url === '/_test/accounts') {
      addAccount(request, response);
      return;
    }
    handle(request, response);
  });

  const stop = () => {
    server.close(() => process.exit(0));
    // Keep-alive connections would hold close() open.
    server.closeAllConnections();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);

  process.stdout.write(`ready ${issuer}\n`);
}

main().catch((error) => {
  process.stderr.write(`${error.stack || error}\n`);
  process.exit(1);
});
