'use strict';
// Test-only Backstage backend (release 1.45.3) for Roster's integration tests.
// Plain CommonJS, no build step. Start it through scripts/backstage.sh, which
// sets the environment that app-config.yaml reads. Never expose it beyond
// loopback: the roster-test auth provider signs in anyone as anyone.

const { createBackend } = require('@backstage/backend-defaults');
const { rosterTestAuthProviderModule, rosterTestAuthPlugin } = require('./roster-test-auth');

const backend = createBackend();

backend.add(require('@backstage/plugin-catalog-backend'));

backend.add(require('@backstage/plugin-permission-backend'));
backend.add(require('@backstage/plugin-permission-backend-module-allow-all-policy'));

backend.add(require('@backstage/plugin-auth-backend'));
backend.add(rosterTestAuthProviderModule);
backend.add(rosterTestAuthPlugin);

backend.start().catch(err => {
  // eslint-disable-next-line no-console
  console.error('backend failed to start', err);
  process.exit(1);
});
