// supabase-js, unchanged, against /auth/v1 of a running Velro (issue 16): the calls a
// front end makes, then the access token on Velro's own /api/v1.
//
//   SUPABASE_URL=http://127.0.0.1:8000 SUPABASE_ANON_KEY=<manage.py supabase_keys> \
//     node --experimental-websocket --test tests/js/auth.test.mjs
//
// tests/accounts/test_supabase_js.py runs it against the app on loopback (make test).
// SUPABASE_TEST_EMAIL: the address to sign up (default: a fresh random one).
// --experimental-websocket: createClient needs a global WebSocket, which Node 20 has
// only behind that flag (Node 22, which supabase-js 2.119 asks for, has it by default).
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';

import { AuthApiError, createClient } from '@supabase/supabase-js';

const url = process.env.SUPABASE_URL;
const anonKey = process.env.SUPABASE_ANON_KEY;
assert.ok(url && anonKey, 'set SUPABASE_URL and SUPABASE_ANON_KEY');

const email = process.env.SUPABASE_TEST_EMAIL || `js-${randomUUID()}@example.com`;
const password = 'lantern-harbour-quiet-88';

function client() {
  return createClient(url, anonKey, { auth: { persistSession: false, autoRefreshToken: false } });
}

function me(accessToken) {
  return fetch(`${url}/api/v1/me`, { headers: { Authorization: `Bearer ${accessToken}` } });
}

// In order: each step uses the session the one before left in the client.
describe('supabase-js against /auth/v1', () => {
  const supabase = client();
  let signedIn;
  let refreshed;

  it('signs up', async () => {
    const { data, error } = await supabase.auth.signUp({ email, password });
    assert.equal(error, null);
    assert.equal(data.user.email, email);
    assert.ok(data.session?.access_token, 'a session: email confirmation is off');
  });

  it('signs in with a password', async () => {
    const { data, error } = await supabase.auth.signInWithPassword({ email, password });
    assert.equal(error, null);
    assert.equal(data.user.email, email);
    signedIn = data.session;
    assert.ok(signedIn.access_token && signedIn.refresh_token);
  });

  it('refreshes the session with a new refresh token', async () => {
    const { data, error } = await supabase.auth.refreshSession();
    assert.equal(error, null);
    refreshed = data.session;
    assert.ok(refreshed.access_token);
    assert.notEqual(refreshed.refresh_token, signedIn.refresh_token);
  });

  it('calls /api/v1/me with the access token', async () => {
    const response = await me(refreshed.access_token);
    assert.equal(response.status, 200);
    assert.equal((await response.json()).email, email);
  });

  it('signs out, and the access token stops at once', async () => {
    const { error } = await supabase.auth.signOut();
    assert.equal(error, null);
    const response = await me(refreshed.access_token);
    assert.equal(response.status, 401);
    assert.equal((await response.json()).code, 'session_not_found');
  });

  it('refuses a wrong password with invalid_credentials', async () => {
    const { data, error } = await client().auth.signInWithPassword({ email, password: 'not-it-at-all' });
    assert.equal(data.session, null);
    assert.ok(error instanceof AuthApiError, `an AuthApiError, not ${error}`);
    assert.equal(error.code, 'invalid_credentials');
    assert.equal(error.status, 400);
  });
});
