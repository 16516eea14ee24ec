-- pgTAP: OAuth mailboxes (20261203100000_oauth_mailboxes.sql). The refresh token sits in
-- Vault like a password; a rotated one replaces it only by compare-and-swap on the hash of
-- the token presented to the provider (a run that lost a race never overwrites a newer
-- token); a refused grant marks the mailbox reconnect_needed only while the refused token
-- is still the stored one; the user sees the state and never the token.
--
-- One transaction, rolled back.
begin;
\ir support/test_helpers.psql

select plan(20);

select tests.create_supabase_user('a', 'a11ce000-0000-4000-8000-00000000000a');

-- A connected mailbox as the connect flow leaves it: provider, refresh token in Vault.
insert into public.mailboxes (id, user_id, host, port, username, auth_kind, oauth_provider, created_at)
values ('00000000-0000-4000-8000-00000000ab01', tests.get_supabase_uid('a'), 'outlook.office365.com', 993,
        'a@example.test', 'oauth2', 'microsoft', now() - interval '2 days');
insert into auto_sync.mailbox_credentials (mailbox_id, secret_id)
values ('00000000-0000-4000-8000-00000000ab01', vault.create_secret('rt-one', 'mailbox:ab01'));
-- A password mailbox of the same user, synced fine.
insert into public.mailboxes (id, user_id, host, port, username, last_synced_at, created_at)
values ('00000000-0000-4000-8000-00000000ab02', tests.get_supabase_uid('a'), 'imap.example.com', 993,
        'a2@example.test', now(), now() - interval '1 day');

create temp table t_hash on commit drop as
select encode(sha256(convert_to('rt-one', 'UTF8')), 'hex') as one,
       encode(sha256(convert_to('rt-two', 'UTF8')), 'hex') as two,
       encode(sha256(convert_to('rt-old', 'UTF8')), 'hex') as old;

-------------------------------------------------------------------------------
-- The row's rules
-------------------------------------------------------------------------------
select throws_ok(
  $$insert into public.mailboxes (user_id, host, port, username, auth_kind, oauth_provider)
    values (tests.get_supabase_uid('a'), 'imap.example.com', 993, 'x', 'password', 'google')$$,
  '23514', null, 'a provider goes with auth_kind oauth2 only');
select throws_ok(
  $$insert into public.mailboxes (user_id, host, port, username, auth_kind, oauth_provider)
    values (tests.get_supabase_uid('a'), 'imap.example.com', 993, 'x', 'oauth2', 'Google; drop')$$,
  '23514', null, 'a provider name is a plain lower-case word');

-------------------------------------------------------------------------------
-- Compare-and-swap of a rotated refresh token
-------------------------------------------------------------------------------
select is(auto_sync.store_rotated_refresh_token('00000000-0000-4000-8000-00000000ab01', (select old from t_hash), 'rt-lost'),
          false, 'a rotation from a token that is no longer stored is refused');
select is(auto_sync.mailbox_credential('00000000-0000-4000-8000-00000000ab01'), 'rt-one',
          '... and the stored token stays');
select is(auto_sync.store_rotated_refresh_token('00000000-0000-4000-8000-00000000ab01', (select one from t_hash), 'rt-two'),
          true, 'a rotation from the stored token is kept');
select is(auto_sync.mailbox_credential('00000000-0000-4000-8000-00000000ab01'), 'rt-two',
          '... in Vault, in place of the presented one');
select is(auto_sync.store_rotated_refresh_token('00000000-0000-4000-8000-00000000ab01', (select one from t_hash), 'rt-three'),
          false, 'a second run rotating the same old token (it lost the race) does not overwrite the newer one');
select is(auto_sync.mailbox_credential('00000000-0000-4000-8000-00000000ab01'), 'rt-two', '... the newest token stays');
select is(auto_sync.store_rotated_refresh_token('00000000-0000-4000-8000-00000000ab02', (select one from t_hash), 'rt-x'),
          false, 'a mailbox without a stored token takes none this way');
select throws_ok(
  $$select auto_sync.store_rotated_refresh_token('00000000-0000-4000-8000-00000000ab01', (select two from t_hash), '')$$,
  '22023', 'Cannot store refresh token: it must be 1 to 8192 characters', 'an empty token is refused');
select is((select count(*)::integer from vault.secrets where name = 'mailbox:ab01'), 1,
          'rotation updates the one secret, it adds none');

-------------------------------------------------------------------------------
-- Reconnect needed
-------------------------------------------------------------------------------
select is(auto_sync.mark_reconnect_needed('00000000-0000-4000-8000-00000000ab01', (select one from t_hash), 'Reconnect needed'),
          false, 'a refusal of a token already replaced (a reconnect meanwhile) marks nothing');
select is((select reconnect_needed_at from public.mailboxes where id = '00000000-0000-4000-8000-00000000ab01'), null,
          '... the mailbox keeps importing');
select is(auto_sync.mark_reconnect_needed('00000000-0000-4000-8000-00000000ab01', (select two from t_hash),
                                          'Reconnect needed: microsoft no longer accepts this mailbox''s connection'),
          true, 'a refusal of the stored token marks the mailbox');
select is((select consecutive_auth_failures from public.mailboxes where id = '00000000-0000-4000-8000-00000000ab01'), 0,
          '... which is not a failed login (no pause counting)');

select tests.authenticate_as('a');
select results_eq(
  $$select mailbox_id, state, needs_user, last_error from public.get_mailbox_states() order by mailbox_id$$,
  $$values ('00000000-0000-4000-8000-00000000ab01'::uuid, 'reconnect_needed', true,
            'Reconnect needed: microsoft no longer accepts this mailbox''s connection'),
           ('00000000-0000-4000-8000-00000000ab02'::uuid, 'ok', false, null::text)$$,
  'the user sees reconnect_needed (needs_user) on that mailbox only; the other is ok');
select is((select count(*)::integer from public.mailboxes where oauth_provider = 'microsoft'), 1,
          'the user reads the provider of their mailbox');
select throws_ok($$select * from auto_sync.mailbox_credentials$$, '42501', null,
                 'the user cannot reach the token''s mapping');
select throws_ok($$select auto_sync.store_rotated_refresh_token('00000000-0000-4000-8000-00000000ab01', 'x', 'mine')$$,
                 '42501', null, 'the user cannot write a refresh token');
select tests.clear_authentication();

select is(auto_sync.mark_reconnect_needed('00000000-0000-4000-8000-00000000ab02', (select two from t_hash), 'x'),
          false, 'a password mailbox is never marked reconnect_needed');

select * from finish();
rollback;
