-- pgTAP: the connect flow's database side (20261203100010_oauth_connect.sql): a state is
-- spent once and expires; a parked connection's ticket turns into a mailbox for its own user
-- only, once; a reconnect updates the same mailbox and clears reconnect_needed; the caps;
-- the refresh token never outlives its row in Vault; disconnect takes the user's own only.
--
-- One transaction, rolled back.
begin;
\ir support/test_helpers.psql

select plan(19);

select tests.create_supabase_user('a', 'a11ce000-0000-4000-8000-00000000000a');
select tests.create_supabase_user('b', 'b0b00000-0000-4000-8000-00000000000b');

create temp table t_h on commit drop as
select encode(sha256(convert_to(x, 'UTF8')), 'hex') as h, x from unnest(array['s1', 's2', 't1', 't2', 't3']) x;
create function pg_temp.h(p text) returns text language sql as $$ select h from t_h where x = p $$;

-------------------------------------------------------------------------------
-- States: single use, expiring, capped, no anonymous users
-------------------------------------------------------------------------------
select lives_ok($$select auto_sync.begin_oauth_connect(tests.get_supabase_uid('a'), false, 'google', pg_temp.h('s1'),
                   repeat('v', 43), 'https://app.example/back')$$, 'a signed-in user begins a connect');
select is((select count(*)::int from auto_sync.take_oauth_state(pg_temp.h('s1'))), 1, 'its state is taken once');
select is((select count(*)::int from auto_sync.take_oauth_state(pg_temp.h('s1'))), 0, '... and never again');

select auto_sync.begin_oauth_connect(tests.get_supabase_uid('a'), false, 'google', pg_temp.h('s2'), repeat('v', 43), 'https://app.example/back');
update auto_sync.oauth_states set expires_at = now() - interval '1 second' where state_sha256 = pg_temp.h('s2');
select is((select count(*)::int from auto_sync.take_oauth_state(pg_temp.h('s2'))), 0, 'an expired state is refused');

select throws_ok($$select auto_sync.begin_oauth_connect(tests.get_supabase_uid('a'), true, 'google', pg_temp.h('s1'),
                   repeat('v', 43), 'https://app.example/back')$$, '42501', null, 'an anonymous user cannot begin');
select lives_ok($$select auto_sync.begin_oauth_connect(tests.get_supabase_uid('b'), false, 'google',
                   encode(sha256(convert_to('b' || n, 'UTF8')), 'hex'), repeat('v', 43), 'https://app.example/back')
                  from generate_series(1, 5) n$$, 'five connects under way at once');
select throws_ok($$select auto_sync.begin_oauth_connect(tests.get_supabase_uid('b'), false, 'google', pg_temp.h('s1'),
                   repeat('v', 43), 'https://app.example/back')$$, '54000', null, '... a sixth is refused');
select throws_ok($$select auto_sync.begin_oauth_connect(tests.get_supabase_uid('a'), false, 'google', 'not-a-hash',
                   repeat('v', 43), 'https://app.example/back')$$, '23514', null, 'only a SHA-256 is stored for a state');

-------------------------------------------------------------------------------
-- Tickets: the flow's user only, once; a reconnect updates the same mailbox
-------------------------------------------------------------------------------
select auto_sync.park_oauth_connection(tests.get_supabase_uid('a'), 'google', 'a@gmail.test', 'imap.gmail.com', 993, 'rt-a1', pg_temp.h('t1'));
select is(auto_sync.finish_oauth_connect(tests.get_supabase_uid('b'), false, pg_temp.h('t1')), null,
          'another user''s ticket makes nothing');
create temp table t_box on commit drop as
select auto_sync.finish_oauth_connect(tests.get_supabase_uid('a'), false, pg_temp.h('t1')) as id;
select results_eq(
  $$select user_id, username, host, port, tls_mode, auth_kind, oauth_provider, auto_sync.mailbox_credential(id)
      from public.mailboxes where id = (select id from t_box)$$,
  $$values (tests.get_supabase_uid('a'), 'a@gmail.test', 'imap.gmail.com', 993, 'tls', 'oauth2', 'google', 'rt-a1')$$,
  'the flow''s user gets the mailbox from the preset, the refresh token in Vault');
select is(auto_sync.finish_oauth_connect(tests.get_supabase_uid('a'), false, pg_temp.h('t1')), null, 'a ticket works once');
select is((select count(*)::int from vault.secrets where name = 'oauth_pending:' || pg_temp.h('t1')), 0,
          'the parked secret is deleted with its ticket');

update public.mailboxes set reconnect_needed_at = now(), last_error = 'Reconnect needed' where id = (select id from t_box);
select auto_sync.park_oauth_connection(tests.get_supabase_uid('a'), 'google', 'A@gmail.test', 'imap.gmail.com', 993, 'rt-a2', pg_temp.h('t2'));
select is(auto_sync.finish_oauth_connect(tests.get_supabase_uid('a'), false, pg_temp.h('t2')), (select id from t_box),
          'connecting the same provider and address again updates the same mailbox');
select results_eq(
  $$select reconnect_needed_at is null, last_error is null, auto_sync.mailbox_credential(id)
      from public.mailboxes where id = (select id from t_box)$$,
  $$values (true, true, 'rt-a2')$$,
  '... with the new refresh token, reconnect_needed cleared');

select auto_sync.park_oauth_connection(tests.get_supabase_uid('a'), 'google', 'x@gmail.test', 'imap.gmail.com', 993, 'rt-x', pg_temp.h('t3'));
update auto_sync.oauth_pending_connections set expires_at = now() - interval '1 second' where ticket_sha256 = pg_temp.h('t3');
select is(auto_sync.finish_oauth_connect(tests.get_supabase_uid('a'), false, pg_temp.h('t3')), null, 'an expired ticket makes nothing');
select throws_ok($$select auto_sync.park_oauth_connection(tests.get_supabase_uid('a'), 'google', 'y@gmail.test',
                   'imap.gmail.com', 993, '', pg_temp.h('s2'))$$, '22023', null, 'an empty refresh token is refused');

-------------------------------------------------------------------------------
-- Disconnect (20261203100020_oauth_disconnect.sql)
-------------------------------------------------------------------------------
select is((select count(*)::int from auto_sync.take_oauth_mailbox(tests.get_supabase_uid('b'), (select id from t_box))), 0,
          'another user cannot take the mailbox');
select results_eq(
  $$select provider, refresh_token from auto_sync.take_oauth_mailbox(tests.get_supabase_uid('a'), (select id from t_box))$$,
  $$values ('google', 'rt-a2')$$,
  'its user takes it: provider and refresh token, for revocation');
select is((select count(*)::int from public.mailboxes where id = (select id from t_box))
          + (select count(*)::int from vault.secrets where name = 'mailbox:' || (select id from t_box)), 0,
          '... and the mailbox and its Vault secret are gone');

select * from finish();
rollback;
