'use strict';
// TEST-ONLY sign-in for Roster's integration tests. Do not copy into a real
// Backstage installation: it hands out a real Backstage user token for any
// user entity ref the caller names, without any credential.
//
// Two pieces:
//
// 1. An auth provider module for the auth plugin, provider id `roster-test`
//    (enabled by `auth.providers.roster-test: {}` in app-config.yaml). It is a
//    proxy-type provider like the guest provider, but the caller picks the
//    user. Tokens are issued by the auth plugin's own token issuer, so they
//    are ordinary user tokens (JOSE typ `vnd.backstage.user`, ES256) that
//    verify against /api/auth/.well-known/jwks.json.
//
//      POST /api/auth/roster-test/refresh
//        {"userEntityRef": "user:default/alice",
//         "ownershipEntityRefs": ["group:default/payments-core"],   (optional)
//         "catalog": false}                                          (optional)
//      -> {"profile": {...}, "backstageIdentity": {"token", "expiresInSeconds",
//          "identity": {"type": "user", "userEntityRef", "ownershipEntityRefs"}}}
//
//    The same fields may be given as query parameters (GET or POST) or, for
//    userEntityRef, as the header `x-roster-test-user`.
//    - ownershipEntityRefs: the token's `ent` claim; defaults to the user ref
//      alone. Ignored when `catalog` is true.
//    - catalog: true signs in through the catalog instead: the user entity
//      must exist (404 otherwise) and the ownership refs are the user plus the
//      groups it is a member of, as a real Backstage sign-in would compute.
//
// 2. A tiny backend plugin `roster-test-auth` with the same inputs and a flat
//    answer, for tests that just want a token:
//
//      POST /api/roster-test-auth/token {"userEntityRef": "user:default/alice"}
//      -> {"token", "expiresInSeconds", "userEntityRef", "ownershipEntityRefs"}
//
//    It calls the provider above through discovery, so the token comes from
//    the auth plugin either way.

const {
  coreServices,
  createBackendModule,
  createBackendPlugin,
} = require('@backstage/backend-plugin-api');
const {
  authProvidersExtensionPoint,
  createProxyAuthenticator,
  createProxyAuthProviderFactory,
} = require('@backstage/plugin-auth-node');
const { parseEntityRef, stringifyEntityRef } = require('@backstage/catalog-model');
const { InputError } = require('@backstage/errors');
const express = require('express');

const PROVIDER_ID = 'roster-test';

function firstString(value) {
  if (Array.isArray(value)) return firstString(value[0]);
  return typeof value === 'string' && value.trim() !== '' ? value.trim() : undefined;
}

function asBool(value) {
  const v = Array.isArray(value) ? value[0] : value;
  return v === true || v === 'true' || v === '1';
}

function normalizeRef(ref, defaultKind, what) {
  let parsed;
  try {
    parsed = parseEntityRef(ref, { defaultKind, defaultNamespace: 'default' });
  } catch (e) {
    throw new InputError(`${what}: invalid entity ref '${ref}': ${e.message}`);
  }
  return stringifyEntityRef(parsed);
}

// Reads the request into {userEntityRef, ownershipEntityRefs, catalog}.
function readRequest(req) {
  const body = req.body && typeof req.body === 'object' ? req.body : {};
  const query = req.query || {};
  const rawUser =
    firstString(body.userEntityRef) ??
    firstString(query.userEntityRef) ??
    firstString(req.headers['x-roster-test-user']);
  if (!rawUser) {
    throw new InputError(
      'userEntityRef is required (JSON body, query parameter or x-roster-test-user header)',
    );
  }
  const userEntityRef = normalizeRef(rawUser, 'user', 'userEntityRef');
  if (!userEntityRef.startsWith('user:')) {
    throw new InputError(`userEntityRef must be of kind User, got '${userEntityRef}'`);
  }
  let ownership = body.ownershipEntityRefs ?? query.ownershipEntityRefs;
  if (typeof ownership === 'string') ownership = ownership.split(',').filter(Boolean);
  if (ownership !== undefined && !Array.isArray(ownership)) {
    throw new InputError('ownershipEntityRefs must be a list of entity refs');
  }
  const ownershipEntityRefs = ownership
    ? ownership.map(r => normalizeRef(String(r), 'group', 'ownershipEntityRefs'))
    : undefined;
  return {
    userEntityRef,
    ownershipEntityRefs,
    catalog: asBool(body.catalog ?? query.catalog),
  };
}

const rosterTestAuthenticator = createProxyAuthenticator({
  initialize() {
    return {};
  },
  async authenticate({ req }) {
    return { result: readRequest(req) };
  },
  async defaultProfileTransform(result) {
    return { profile: { displayName: parseEntityRef(result.userEntityRef).name } };
  },
});

async function rosterTestSignInResolver({ result }, ctx) {
  if (result.catalog) {
    // Real catalog sign-in: 404 NotFoundError when the user does not exist.
    return ctx.signInWithCatalogUser({ entityRef: result.userEntityRef });
  }
  const ent = result.ownershipEntityRefs ?? [result.userEntityRef];
  return ctx.issueToken({ claims: { sub: result.userEntityRef, ent } });
}

const rosterTestAuthProviderModule = createBackendModule({
  pluginId: 'auth',
  moduleId: 'roster-test-provider',
  register(reg) {
    reg.registerInit({
      deps: { providers: authProvidersExtensionPoint },
      async init({ providers }) {
        providers.registerProvider({
          providerId: PROVIDER_ID,
          factory: createProxyAuthProviderFactory({
            authenticator: rosterTestAuthenticator,
            signInResolver: rosterTestSignInResolver,
          }),
        });
      },
    });
  },
});

const rosterTestAuthPlugin = createBackendPlugin({
  pluginId: 'roster-test-auth',
  register(reg) {
    reg.registerInit({
      deps: {
        httpRouter: coreServices.httpRouter,
        discovery: coreServices.discovery,
        logger: coreServices.logger,
      },
      async init({ httpRouter, discovery, logger }) {
        const router = express.Router();
        router.use(express.json());
        router.post('/token', async (req, res) => {
          try {
            // Validate here too, so a bad request gets a clear 400 from us.
            const input = readRequest(req);
            const authBase = await discovery.getBaseUrl('auth');
            const upstream = await fetch(`${authBase}/${PROVIDER_ID}/refresh`, {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify(input),
            });
            const text = await upstream.text();
            if (!upstream.ok) {
              res.status(upstream.status).type('application/json').send(text);
              return;
            }
            const { backstageIdentity } = JSON.parse(text);
            res.json({
              token: backstageIdentity.token,
              expiresInSeconds: backstageIdentity.expiresInSeconds,
              userEntityRef: backstageIdentity.identity.userEntityRef,
              ownershipEntityRefs: backstageIdentity.identity.ownershipEntityRefs,
            });
          } catch (e) {
            const status = e && e.name === 'InputError' ? 400 : 500;
            if (status === 500) logger.error(`token issue failed: ${e}`);
            res.status(status).json({ error: { name: e.name, message: e.message } });
          }
        });
        httpRouter.use(router);
        httpRouter.addAuthPolicy({ path: '/token', allow: 'unauthenticated' });
        logger.warn('TEST-ONLY token issuer enabled at /api/roster-test-auth/token');
      },
    });
  },
});

module.exports = { rosterTestAuthProviderModule, rosterTestAuthPlugin };
