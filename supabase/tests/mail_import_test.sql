-- pgTAP: the mail import's database side (20261129130000_mail_import_tables.sql,
-- 20261129130100_mailbox_api.sql, 20261129130200_mail_importer.sql). When a run's end
-- brings the next run forward: next_run_test.sql.
--
--   a signed-in user   adds, changes and removes their own mailboxes; reads their own
--                      mailboxes and emails (RLS); never another user's; never a credential
--   anon               reads nothing
--   the importer       (service_role) claims a mailbox, stores batches idempotently,
--                      re-maps after a UIDVALIDITY reset, records outcomes
--   Vault              holds each credential; only postgres reads it; a removed mailbox or
--                      a deleted user takes its secret along
--
-- One transaction, rolled back. pg_cron's dispatch() and the pg_net worker share this
-- database: every check filters on this file's own users and mailboxes.
begin;
\ir support/test_helpers.psql
set local timezone = 'UTC';

select plan(150);

-------------------------------------------------------------------------------
-- Fixtures
-------------------------------------------------------------------------------
select tests.create_supabase_user('a', 'f1a00000-0000-4000-8000-00000000000a');
select tests.create_supabase_user('b', 'f1b00000-0000-4000-8000-00000000000b');
select tests.create_supabase_user('c', 'f1c00000-0000-4000-8000-00000000000c');

-- Mailbox ids by name, the credentials this file uses, and runs.
create temp table t_box (name text primary key, id uuid) on commit drop;
create temp table t_secret (name text primary key, value text not null) on commit drop;
insert into t_secret values
  ('a1', 'pgtap-cred-A1-7f3c9d'),
  ('a1-new', 'pgtap-cred-A1-rotated-22d1'),
  ('a2', 'pgtap-cred-A2-5be0aa'),
  ('a3', 'pgtap-cred-A3-c0ffee'),
  ('a3-new', 'pgtap-cred-A3-rotated-0b5e'),
  ('a4', 'pgtap-cred-A4-9a9a9a'),
  ('b1', 'pgtap-cred-B1-91ae4f'),
  ('c1', 'pgtap-cred-C1-d00d11');
create temp table t_run (name text primary key, id uuid not null) on commit drop;
insert into t_run values ('run1', gen_random_uuid()), ('run2', gen_random_uuid());
create temp table t_result (name text primary key, value text) on commit drop;
grant select, insert, update on t_box, t_secret, t_run, t_result to public;

-- One message as the importer sends it (an EmailRecord): key mid:m<n>@pgtap.test.
create function pg_temp.msg(p_uid bigint, p_n integer, p_flags text[] default '{}') returns jsonb
language sql immutable
as $$
  select jsonb_build_object(
    'uid', p_uid,
    'message_key', format('mid:m%s@pgtap.test', p_n),
    'message_id', format('m%s@pgtap.test', p_n),
    'in_reply_to', null,
    'references', jsonb_build_array('root@pgtap.test', format('p%s@pgtap.test', p_n)),
    'from_address', jsonb_build_object('name', 'Bob', 'address', 'bob@pgtap.test'),
    'to_addresses', jsonb_build_array(jsonb_build_object('name', null, 'address', 'a@pgtap.test')),
    'cc_addresses', '[]'::jsonb,
    'subject', format('Message %s', p_n),
    'sent_at', '2026-11-02T10:00:00.000Z',
    'internal_date', '2026-11-02T10:00:05.000Z',
    'flags', to_jsonb(p_flags),
    'size_bytes', 1000 + p_n,
    'body_text', format('Body of message %s', p_n),
    'body_truncated', false,
    'source_truncated', p_n = 3,
    'snippet', format('Body of message %s', p_n),
    'attachments', case when p_n = 2
                        then '[{"filename": "a.pdf", "content_type": "application/pdf", "size": 10, "part": "2"}]'::jsonb
                        else '[]'::jsonb end,
    'parse_error', null)
$$;

-------------------------------------------------------------------------------
-- public.add_mailbox, as each user
-------------------------------------------------------------------------------
select tests.authenticate_as('a');
insert into t_box values
  ('a1', public.add_mailbox('imap.a.example.test', 993, 'alice@a.example.test',
                            (select value from t_secret where name = 'a1'),
                            'tls', 'password', '{INBOX,Archive}', 'Work')),
  ('a2', public.add_mailbox('imap2.a.example.test', 143, 'alice2', (select value from t_secret where name = 'a2'),
                            p_tls_mode => 'starttls')),
  ('a3', public.add_mailbox('imap3.a.example.test', 993, 'alice3', (select value from t_secret where name = 'a3'),
                            p_auth_kind => 'oauth2')),
  ('a4', public.add_mailbox('imap4.a.example.test', 993, 'alice4', (select value from t_secret where name = 'a4')));
select tests.authenticate_as('b');
insert into t_box values
  ('b1', public.add_mailbox('imap.b.example.test', 993, 'bob@b.example.test', (select value from t_secret where name = 'b1')));
select tests.authenticate_as('c');
insert into t_box values
  ('c1', public.add_mailbox('imap.c.example.test', 993, 'carol', (select value from t_secret where name = 'c1')));
select tests.clear_authentication();

select is((select count(*) from t_box where id is not null), 6::bigint, 'add_mailbox returned an id for each of 6 mailboxes');
select is(
  (select format('%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s', m.user_id, m.host, m.port, m.tls_mode, m.username, m.auth_kind,
                 m.folders, m.label, m.enabled, m.paused_reason is null, m.consecutive_auth_failures)
     from public.mailboxes m where m.id = (select id from t_box where name = 'a1')),
  'f1a00000-0000-4000-8000-00000000000a|imap.a.example.test|993|tls|alice@a.example.test|password|{INBOX,Archive}|Work|t|t|0',
  'add_mailbox as A: a mailbox owned by A, with the given settings, enabled, not paused');
select is(
  (select array_agg(format('%s:%s:%s:%s', b.name, m.port, m.tls_mode, m.auth_kind) order by b.name)
     from t_box b join public.mailboxes m on m.id = b.id where b.name in ('a2', 'a3', 'a4')),
  array['a2:143:starttls:password', 'a3:993:tls:oauth2', 'a4:993:tls:password'],
  'add_mailbox: defaults tls and password, overridable');
select is(
  (select array_agg(b.name || ':' || m.user_id order by b.name) from t_box b join public.mailboxes m on m.id = b.id
    where b.name in ('b1', 'c1')),
  array['b1:f1b00000-0000-4000-8000-00000000000b', 'c1:f1c00000-0000-4000-8000-00000000000c'],
  'each mailbox belongs to the user who added it (auth.uid(), not a parameter)');

-- The credential lives in Vault, and only there.
select is(
  (select array_agg(format('%s|%s|%s|%s', b.name, s.decrypted_secret = t.value, s.name = 'mailbox:' || b.id,
                           s.description) order by b.name)
     from t_box b
     join t_secret t on t.name = b.name
     join auto_sync.mailbox_credentials c on c.mailbox_id = b.id
     join vault.decrypted_secrets s on s.id = c.secret_id),
  array['a1|t|t|IMAP credential', 'a2|t|t|IMAP credential', 'a3|t|t|IMAP credential', 'a4|t|t|IMAP credential',
        'b1|t|t|IMAP credential', 'c1|t|t|IMAP credential'],
  'each credential is a Vault secret named mailbox:<id>, linked in auto_sync.mailbox_credentials (checked as postgres)');
select is(
  (select count(*) from vault.secrets s, t_secret t
    where s.id in (select c.secret_id from auto_sync.mailbox_credentials c where c.mailbox_id in (select id from t_box))
      and position(t.value in s.secret) > 0),
  0::bigint, 'vault.secrets stores the credentials encrypted (no plaintext in the secret column)');
select is(
  (select count(*) from public.mailboxes m, t_secret t
    where m.id in (select id from t_box) and position(t.value in row_to_json(m)::text) > 0),
  0::bigint, 'no column of public.mailboxes holds a credential');
select is(
  (select count(*) from auto_sync.mailbox_credentials c, t_secret t
    where c.mailbox_id in (select id from t_box) and position(t.value in row_to_json(c)::text) > 0),
  0::bigint, 'auto_sync.mailbox_credentials holds ids only');

-------------------------------------------------------------------------------
-- The importer (postgres, as the functions connect): credential, store_batch, reset,
-- claim, outcome. service_role may call none of these (access_api_roles_test.sql).
-------------------------------------------------------------------------------
select is(auto_sync.mailbox_credential((select id from t_box where name = 'a1')),
          (select value from t_secret where name = 'a1'),
          'the importer: mailbox_credential returns the mailbox''s credential from Vault');
select is(auto_sync.mailbox_credential(gen_random_uuid()), null, 'the importer: an unknown mailbox has no credential');
select tests.authenticate_as_role('service_role');
select throws_ok($$select auto_sync.mailbox_credential((select id from t_box where name = 'a1'))$$, '42501',
                 'permission denied for function mailbox_credential',
                 'service_role cannot call auto_sync.mailbox_credential');
select throws_ok($$select * from auto_sync.mailbox_credentials$$, '42501', 'permission denied for table mailbox_credentials',
                 'service_role cannot read auto_sync.mailbox_credentials');
select throws_ok($$select decrypted_secret from vault.decrypted_secrets$$, '42501', null,
                 'service_role cannot read vault.decrypted_secrets');
select tests.clear_authentication();

-- First batch: three new messages.
insert into t_result
select 'batch1', format('%s|%s|%s', r.inserted, r.remapped, r.duplicates)
  from auto_sync.store_batch((select id from t_box where name = 'a1'), 'INBOX', 100,
         jsonb_build_array(pg_temp.msg(1, 1, '{\\Seen}'), pg_temp.msg(2, 2), pg_temp.msg(3, 3)), 3, 10, 3) r;
select is((select value from t_result where name = 'batch1'), '3|0|0', 'store_batch: three new messages are inserted (3|0|0)');
select is(
  (select array_agg(format('%s|%s|%s|%s|%s', e.uid, e.message_key, e.uid_validity, e.user_id, e.subject) order by e.uid)
     from public.emails e where e.mailbox_id = (select id from t_box where name = 'a1')),
  array['1|mid:m1@pgtap.test|100|f1a00000-0000-4000-8000-00000000000a|Message 1',
        '2|mid:m2@pgtap.test|100|f1a00000-0000-4000-8000-00000000000a|Message 2',
        '3|mid:m3@pgtap.test|100|f1a00000-0000-4000-8000-00000000000a|Message 3'],
  'store_batch: rows carry the folder, UIDVALIDITY, UID, key and the mailbox owner as user_id');
select is(
  (select format('%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s', e.folder, e.message_id, e."references", e.from_address,
                 e.to_addresses, e.sent_at, e.internal_date, e.flags, e.size_bytes, e.body_text, e.snippet)
     from public.emails e where e.mailbox_id = (select id from t_box where name = 'a1') and e.uid = 1),
  'INBOX|m1@pgtap.test|{root@pgtap.test,p1@pgtap.test}|{"name": "Bob", "address": "bob@pgtap.test"}|'
    || '[{"name": null, "address": "a@pgtap.test"}]|2026-11-02 10:00:00+00|2026-11-02 10:00:05+00|{"\\Seen"}|1001|'
    || 'Body of message 1|Body of message 1',
  'store_batch: every field of a message is stored');
select is(
  (select array_agg(format('%s|%s|%s', e.uid, e.source_truncated, e.attachments) order by e.uid)
     from public.emails e where e.mailbox_id = (select id from t_box where name = 'a1')),
  array['1|f|[]', '2|f|[{"part": "2", "size": 10, "filename": "a.pdf", "content_type": "application/pdf"}]', '3|t|[]'],
  'store_batch: attachments and source_truncated are stored');
select is(
  (select format('%s|%s|%s|%s|%s|%s', s.uid_validity, s.last_uid, s.highest_modseq, s.message_count, s.resets,
                 s.last_checked_at = now())
     from auto_sync.folder_states((select id from t_box where name = 'a1')) s where s.folder = 'INBOX'),
  '100|3|10|3|0|t', 'store_batch: the folder state is written with the batch (uid_validity, last_uid, modseq, count)');

-- The same batch again: nothing new.
select is(
  (select format('%s|%s|%s', r.inserted, r.remapped, r.duplicates)
     from auto_sync.store_batch((select id from t_box where name = 'a1'), 'INBOX', 100,
            jsonb_build_array(pg_temp.msg(1, 1), pg_temp.msg(2, 2), pg_temp.msg(3, 3)), 3) r),
  '0|0|3', 'store_batch is idempotent: the same batch again inserts nothing, all duplicates');
select is((select count(*) from public.emails e where e.mailbox_id = (select id from t_box where name = 'a1')),
          3::bigint, 'store_batch is idempotent: still 3 rows');

-- Duplicates inside one batch, and an old message again.
select is(
  (select format('%s|%s|%s', r.inserted, r.remapped, r.duplicates)
     from auto_sync.store_batch((select id from t_box where name = 'a1'), 'INBOX', 100,
            jsonb_build_array(pg_temp.msg(5, 4), pg_temp.msg(4, 4), pg_temp.msg(2, 2)), 5) r),
  '1|0|2', 'store_batch: a message_key twice in one batch is stored once; the old message is a duplicate (1|0|2)');
select is(
  (select array_agg(e.uid order by e.uid) from public.emails e
    where e.mailbox_id = (select id from t_box where name = 'a1') and e.message_key = 'mid:m4@pgtap.test'),
  array[4::bigint], 'store_batch: of an in-batch duplicate, the lowest UID is kept');

-- last_uid never goes back; a null modseq or count keeps the stored one.
select is(
  (select format('%s|%s|%s', r.inserted, r.remapped, r.duplicates)
     from auto_sync.store_batch((select id from t_box where name = 'a1'), 'INBOX', 100, '[]', 2) r),
  '0|0|0', 'store_batch: an empty batch stores nothing');
select is(
  (select format('%s|%s|%s', s.last_uid, s.highest_modseq, s.message_count)
     from auto_sync.folder_states((select id from t_box where name = 'a1')) s where s.folder = 'INBOX'),
  '5|10|3', 'store_batch: last_uid advances with greatest() (5, not 2) and keeps modseq and count when given null');

select throws_ok(
  $$select * from auto_sync.store_batch(gen_random_uuid(), 'INBOX', 1, '[]', 0)$$,
  'P0002', null, 'store_batch: an unknown mailbox raises, nothing is stored');

-- Another folder of the same mailbox and the same message keys: separate rows.
select is(
  (select format('%s|%s|%s', r.inserted, r.remapped, r.duplicates)
     from auto_sync.store_batch((select id from t_box where name = 'a1'), 'Archive', 7,
            jsonb_build_array(pg_temp.msg(1, 1)), 1) r),
  '1|0|0', 'store_batch: the same message in another folder is its own row');

-- Bodies sent apart (p_bodies, what the importer does): matched to p_messages by position.
select is(
  (select format('%s|%s|%s', r.inserted, r.remapped, r.duplicates)
     from auto_sync.store_batch((select id from t_box where name = 'a1'), 'Bodies', 9,
            jsonb_build_array(pg_temp.msg(11, 11), pg_temp.msg(12, 12), pg_temp.msg(13, 13),
                              pg_temp.msg(15, 14), pg_temp.msg(14, 14)),
            15, null, null,
            array['apart 11', null, E'apart 13: "quotes", \\ backslash, caf\u00e9, {braces}', 'uid 15', 'uid 14']) r),
  '4|0|1', 'store_batch with p_bodies: four messages stored, the key sent twice in the batch is one duplicate (4|0|1)');
select is(
  (select array_agg(format('%s=%s', e.uid, e.body_text) order by e.uid)
     from public.emails e where e.mailbox_id = (select id from t_box where name = 'a1') and e.folder = 'Bodies'),
  array['11=apart 11', '12=Body of message 12', E'13=apart 13: "quotes", \\ backslash, caf\u00e9, {braces}', '14=uid 14'],
  'store_batch with p_bodies: each body lands on its own message, verbatim; a null one falls back to the JSON body_text; an in-batch duplicate keeps its own body');

-- UIDVALIDITY changes: reset, then the same messages under new UIDs are re-mapped.
select lives_ok($$select auto_sync.reset_folder((select id from t_box where name = 'a1'), 'INBOX', 200)$$,
                'reset_folder: a new UIDVALIDITY is recorded');
select is(
  (select format('%s|%s|%s|%s|%s', s.uid_validity, s.last_uid, s.highest_modseq, s.resets, s.last_reset_at = now())
     from auto_sync.folder_states((select id from t_box where name = 'a1')) s where s.folder = 'INBOX'),
  '200|0||1|t', 'reset_folder: uid_validity 200, last_uid 0, modseq cleared, one reset recorded');
select is(
  (select format('%s|%s|%s', r.inserted, r.remapped, r.duplicates)
     from auto_sync.store_batch((select id from t_box where name = 'a1'), 'INBOX', 200,
            jsonb_build_array(pg_temp.msg(11, 1, '{\\Flagged}'), pg_temp.msg(12, 2), pg_temp.msg(13, 3),
                              pg_temp.msg(14, 4), pg_temp.msg(15, 6)), 15, 20, 5) r),
  '1|4|0', 'store_batch after a reset: 4 known messages re-mapped, 1 new inserted (1|4|0)');
select is(
  (select array_agg(format('%s|%s|%s', e.message_key, e.uid_validity, e.uid) order by e.uid)
     from public.emails e where e.mailbox_id = (select id from t_box where name = 'a1') and e.folder = 'INBOX'),
  array['mid:m1@pgtap.test|200|11', 'mid:m2@pgtap.test|200|12', 'mid:m3@pgtap.test|200|13',
        'mid:m4@pgtap.test|200|14', 'mid:m6@pgtap.test|200|15'],
  'store_batch after a reset: no duplicate rows; every row carries the new UIDVALIDITY and UID');
select is(
  (select e.flags from public.emails e
    where e.mailbox_id = (select id from t_box where name = 'a1') and e.message_key = 'mid:m1@pgtap.test'
      and e.folder = 'INBOX'),
  '{"\\Flagged"}'::text[], 'store_batch after a reset: a re-mapped row takes the new flags');
select is(
  (select format('%s|%s|%s', r.inserted, r.remapped, r.duplicates)
     from auto_sync.store_batch((select id from t_box where name = 'a1'), 'INBOX', 200,
            jsonb_build_array(pg_temp.msg(11, 1), pg_temp.msg(12, 2)), 12) r),
  '0|0|2', 'store_batch after a reset: the same batch again is all duplicates, not re-mapped twice');
select is(
  (select format('%s|%s|%s|%s', s.uid_validity, s.last_uid, s.highest_modseq, s.resets)
     from auto_sync.folder_states((select id from t_box where name = 'a1')) s where s.folder = 'INBOX'),
  '200|15|20|1', 'folder state after the re-import: last_uid 15 under UIDVALIDITY 200');
select lives_ok($$select auto_sync.reset_folder((select id from t_box where name = 'a1'), 'INBOX', 300)$$,
                'reset_folder again');
select is(
  (select s.resets from auto_sync.folder_states((select id from t_box where name = 'a1')) s where s.folder = 'INBOX'),
  2, 'reset_folder: resets are counted');
select is(
  (select format('%s|%s', s.uid_validity, s.resets) from auto_sync.folder_state s
    where s.mailbox_id = (select id from t_box where name = 'a1') and s.folder = 'Archive'),
  '7|0', 'reset_folder touches only its folder');

-- touch_folder: nothing new, last_uid untouched.
select lives_ok($$select auto_sync.touch_folder((select id from t_box where name = 'a1'), 'Archive', 7, 99, 1)$$,
                'touch_folder on an unchanged folder');
select is(
  (select format('%s|%s|%s', s.last_uid, s.highest_modseq, s.message_count) from auto_sync.folder_state s
    where s.mailbox_id = (select id from t_box where name = 'a1') and s.folder = 'Archive'),
  '1|99|1', 'touch_folder: keeps last_uid, records modseq and count');

-- Mail for the other mailboxes, for the RLS and removal checks below.
select is(
  (select format('%s|%s|%s', r.inserted, r.remapped, r.duplicates)
     from auto_sync.store_batch((select id from t_box where name = 'b1'), 'INBOX', 1,
            jsonb_build_array(pg_temp.msg(1, 1), pg_temp.msg(2, 2)), 2) r),
  '2|0|0', 'store_batch: the same message keys in another user''s mailbox are that mailbox''s own rows');
select lives_ok($$
  select auto_sync.store_batch((select id from t_box where name = b), 'INBOX', 1, jsonb_build_array(pg_temp.msg(1, 9)), 1)
    from unnest(array['a2', 'c1']) b$$, 'store_batch: one message each for a2 and c1');

-- claim_mailbox / release_mailbox: one import per mailbox at a time.
select is(auto_sync.claim_mailbox((select id from t_box where name = 'a1'), (select id from t_run where name = 'run1'), '2 minutes'),
          true, 'claim_mailbox: the first run claims the mailbox');
select is(auto_sync.claim_mailbox((select id from t_box where name = 'a1'), (select id from t_run where name = 'run2'), '2 minutes'),
          false, 'claim_mailbox: a second run is refused while the lease is valid');
select is(auto_sync.claim_mailbox((select id from t_box where name = 'a1'), (select id from t_run where name = 'run1'), '5 minutes'),
          true, 'claim_mailbox: the holder may claim again (extends its lease)');
select lives_ok($$select auto_sync.release_mailbox((select id from t_box where name = 'a1'), (select id from t_run where name = 'run2'))$$,
                'release_mailbox by a run that does not hold the lease');
select is(auto_sync.claim_mailbox((select id from t_box where name = 'a1'), (select id from t_run where name = 'run2'), '2 minutes'),
          false, 'release_mailbox by another run does not free the mailbox');
select tests.clear_authentication();
select is(
  (select format('%s|%s', m.import_run_id = (select id from t_run where name = 'run1'), m.import_lease_until = now() + interval '5 minutes')
     from public.mailboxes m where m.id = (select id from t_box where name = 'a1')),
  't|t', 'the lease: run1 holds it until now() + 5 minutes');
-- The holder crashed: its lease runs out.
update public.mailboxes set import_lease_until = now() - interval '1 second'
 where id = (select id from t_box where name = 'a1');
select is(auto_sync.claim_mailbox((select id from t_box where name = 'a1'), (select id from t_run where name = 'run2'), '2 minutes'),
          true, 'claim_mailbox: once the lease has expired another run may claim');
select lives_ok($$select auto_sync.release_mailbox((select id from t_box where name = 'a1'), (select id from t_run where name = 'run2'))$$,
                'release_mailbox by the holder');
select is(
  (select format('%s|%s', m.import_run_id is null, m.import_lease_until is null) from public.mailboxes m
    where m.id = (select id from t_box where name = 'a1')),
  't|t', 'release_mailbox: the holder''s release frees the mailbox');
select is(auto_sync.claim_mailbox((select id from t_box where name = 'a1'), (select id from t_run where name = 'run1'), '-1 second'),
          true, 'claim_mailbox with a lease already in the past');
select is(auto_sync.claim_mailbox((select id from t_box where name = 'a1'), (select id from t_run where name = 'run2'), '1 minute'),
          true, 'claim_mailbox: an expired lease (negative length) does not block');
select lives_ok($$select auto_sync.release_mailbox((select id from t_box where name = 'a1'), (select id from t_run where name = 'run2'))$$,
                'release again');
select is(auto_sync.claim_mailbox(gen_random_uuid(), (select id from t_run where name = 'run1'), '1 minute'),
          false, 'claim_mailbox: an unknown mailbox cannot be claimed');

-- record_mailbox_outcome: three failed logins in a row pause the mailbox.
select is(auto_sync.record_mailbox_outcome((select id from t_box where name = 'a3'), 'Login failed', true), null,
          'record_mailbox_outcome: first auth failure, not paused');
select is(auto_sync.record_mailbox_outcome((select id from t_box where name = 'a3'), 'Login failed', true), null,
          'record_mailbox_outcome: second auth failure, not paused');
select is(auto_sync.record_mailbox_outcome((select id from t_box where name = 'a3'), 'Login failed', true),
          'Paused after 3 failed logins: update the password or token to resume',
          'record_mailbox_outcome: the third auth failure in a row pauses and returns the reason');
select tests.clear_authentication();
select is(
  (select format('%s|%s|%s|%s', m.consecutive_auth_failures, m.paused_reason, m.last_error, m.last_synced_at is null)
     from public.mailboxes m where m.id = (select id from t_box where name = 'a3')),
  '3|Paused after 3 failed logins: update the password or token to resume|Login failed|t',
  'the paused mailbox: 3 failures, the reason, the last error, never synced');
select is(auto_sync.record_mailbox_outcome((select id from t_box where name = 'a1'), 'Login failed', true), null,
          'record_mailbox_outcome: an auth failure on a1');
select is(auto_sync.record_mailbox_outcome((select id from t_box where name = 'a1'), 'Login failed', true), null,
          'record_mailbox_outcome: a second one on a1');
select is(auto_sync.record_mailbox_outcome((select id from t_box where name = 'a1'), null, false), null,
          'record_mailbox_outcome: a success');
select is(auto_sync.record_mailbox_outcome((select id from t_box where name = 'a1'), 'Login failed', true), null,
          'record_mailbox_outcome: after a success, the next auth failure is the first again (not paused)');
select is(auto_sync.record_mailbox_outcome((select id from t_box where name = 'a1'), null, false), null,
          'record_mailbox_outcome: success again');
select tests.clear_authentication();
select is(
  (select format('%s|%s|%s|%s', m.consecutive_auth_failures, m.paused_reason is null, m.last_error is null,
                 m.last_synced_at = now())
     from public.mailboxes m where m.id = (select id from t_box where name = 'a1')),
  '0|t|t|t', 'a success resets the failure count, clears the error and records last_synced_at');

-- import_targets: enabled mailboxes only. Paused ones are listed with their reason (the
-- runner skips them and says why); disabled ones are not listed at all.
update public.mailboxes set enabled = false where id = (select id from t_box where name = 'a4');
select is(
  (select array_agg(format('%s|%s', b.name, t.paused_reason is not null) order by b.name)
     from auto_sync.import_targets('f1a00000-0000-4000-8000-00000000000a') t join t_box b on b.id = t.id),
  array['a1|f', 'a2|f', 'a3|t'],
  'import_targets: A''s enabled mailboxes (a4 disabled is left out; a3 comes with its pause reason)');
select is(
  (select count(*) from auto_sync.import_targets('f1a00000-0000-4000-8000-00000000000a') t
    where t.user_id <> 'f1a00000-0000-4000-8000-00000000000a'),
  0::bigint, 'import_targets: only that user''s mailboxes');
select tests.clear_authentication();

-------------------------------------------------------------------------------
-- User A: own rows only, through RLS and the public functions
-------------------------------------------------------------------------------
create temp table t_counts on commit drop as
select m.user_id, count(distinct m.id) as mailboxes, count(e.id) as emails
  from public.mailboxes m left join public.emails e on e.mailbox_id = m.id
 where m.id in (select id from t_box)
 group by m.user_id;
grant select on t_counts to public;

select tests.authenticate_as('a');
select is(
  array(select m.id from public.mailboxes m order by m.id),
  array(select b.id from t_box b where b.name like 'a%' order by b.id),
  'A reads exactly A''s mailboxes: all of them, nobody else''s');
select is((select count(*) from public.emails e where e.user_id <> 'f1a00000-0000-4000-8000-00000000000a'), 0::bigint,
          'A reads no one else''s emails');
select is((select count(*) from public.emails e),
          (select c.emails from t_counts c where c.user_id = 'f1a00000-0000-4000-8000-00000000000a'),
          'A reads all of A''s emails');
select is((select count(*) from public.emails e where e.mailbox_id = (select id from t_box where name = 'b1')), 0::bigint,
          'A cannot read the emails of B''s mailbox, even by its id');
select throws_ok($$update public.mailboxes set host = 'evil.example.test'$$, '42501', 'permission denied for table mailboxes',
                 'A cannot update public.mailboxes directly');
select throws_ok($$delete from public.emails$$, '42501', 'permission denied for table emails',
                 'A cannot delete from public.emails directly');
select throws_ok($$insert into public.emails (user_id, mailbox_id, folder, uid_validity, uid, message_key)
                   values ('f1a00000-0000-4000-8000-00000000000a', (select id from t_box where name = 'a1'), 'INBOX', 1, 999, 'x')$$,
                 '42501', 'permission denied for table emails', 'A cannot insert into public.emails directly');
select throws_ok(q, '42501', 'permission denied for schema auto_sync', format('A cannot call %s', q))
from unnest(array[
  $$select auto_sync.mailbox_credential((select id from t_box where name = 'a1'))$$,
  $$select * from auto_sync.store_batch((select id from t_box where name = 'a1'), 'INBOX', 1, '[]', 0)$$,
  $$select auto_sync.claim_mailbox((select id from t_box where name = 'a1'), gen_random_uuid(), '1 minute')$$,
  $$select auto_sync.record_mailbox_outcome((select id from t_box where name = 'a3'), null, false)$$,
  $$select auto_sync.reset_folder((select id from t_box where name = 'a1'), 'INBOX', 1)$$,
  $$select * from auto_sync.import_targets('f1a00000-0000-4000-8000-00000000000a')$$,
  $$select * from auto_sync.mailbox_credentials$$
]) q;
select throws_ok($$select decrypted_secret from vault.decrypted_secrets$$, '42501', null,
                 'A cannot read vault.decrypted_secrets');

-- Another user's mailbox: no change, no removal.
select is(public.update_mailbox((select id from t_box where name = 'b1'), p_host => 'evil.example.test',
                                p_credential => 'pgtap-cred-stolen-0000', p_enabled => false),
          false, 'A: update_mailbox of B''s mailbox returns false');
select is(public.remove_mailbox((select id from t_box where name = 'b1')), false,
          'A: remove_mailbox of B''s mailbox returns false');
select is(public.update_mailbox(gen_random_uuid(), p_label => 'x'), false, 'A: update_mailbox of an unknown id returns false');

-- Validation.
select throws_ok(q, '23514', null, format('A: invalid settings are refused: %s', q))
from unnest(array[
  $$select public.add_mailbox('bad host!', 993, 'u', 'pgtap-cred-x')$$,
  $$select public.add_mailbox('-leading-dash.example.test', 993, 'u', 'pgtap-cred-x')$$,
  $$select public.add_mailbox('imap.example.test', 0, 'u', 'pgtap-cred-x')$$,
  $$select public.add_mailbox('imap.example.test', 65536, 'u', 'pgtap-cred-x')$$,
  $$select public.add_mailbox('imap.example.test', 993, 'u', 'pgtap-cred-x', p_tls_mode => 'none')$$,
  $$select public.add_mailbox('imap.example.test', 993, '', 'pgtap-cred-x')$$,
  $$select public.add_mailbox('imap.example.test', 993, 'u', 'pgtap-cred-x', p_folders => '{}')$$,
  $$select public.update_mailbox((select id from t_box where name = 'a1'), p_port => 0)$$,
  $$select public.update_mailbox((select id from t_box where name = 'a1'), p_tls_mode => 'none')$$
]) q;
select throws_ok(q, '22023', null, format('A: an empty or oversized credential is refused: %s', q))
from unnest(array[
  $$select public.add_mailbox('imap.example.test', 993, 'u', '')$$,
  $$select public.add_mailbox('imap.example.test', 993, 'u', null)$$,
  $$select public.add_mailbox('imap.example.test', 993, 'u', repeat('x', 8193))$$,
  $$select public.update_mailbox((select id from t_box where name = 'a1'), p_credential => '')$$
]) q;
select is((select count(*) from public.mailboxes), 4::bigint, 'A: the refused calls added no mailbox');

-- A new credential for a paused mailbox: Vault updated, pause lifted.
select is(public.update_mailbox((select id from t_box where name = 'a3'),
                                p_credential => (select value from t_secret where name = 'a3-new')),
          true, 'A: update_mailbox with a new credential returns true');
select is(
  (select format('%s|%s|%s', m.paused_reason is null, m.consecutive_auth_failures, m.host)
     from public.mailboxes m where m.id = (select id from t_box where name = 'a3')),
  't|0|imap3.a.example.test', 'A: the pause and the failure count are cleared; other settings are kept');
-- Where the credential goes (host, port, TLS mode), whose it is (username) and how it
-- is presented (auth kind) change only with the credential given again.
create temp table t_a2_before on commit drop as
  select m.* from public.mailboxes m where m.id = (select id from t_box where name = 'a2');
select throws_ok(format($$select public.update_mailbox(%L, %s)$$, (select id from t_box where name = 'a2'), q), '22023',
                 'Cannot update mailbox: a new host, port, TLS mode, username or sign-in kind needs the password or token again',
                 format('A: update_mailbox(%s) without the credential is refused', q))
  from unnest(array['p_host => ''evil.example.test''', 'p_port => 1143', 'p_tls_mode => ''plain''',
                    'p_username => ''someone-else''', 'p_auth_kind => ''oauth2''',
                    'p_host => ''evil.example.test'', p_label => ''looks harmless''']) q;
select is((select format('%s|%s|%s|%s|%s|%s', m.host, m.port, m.tls_mode, m.username, m.auth_kind, m.label)
             from public.mailboxes m where m.id = (select id from t_box where name = 'a2')),
          (select format('%s|%s|%s|%s|%s|%s', b.host, b.port, b.tls_mode, b.username, b.auth_kind, b.label) from t_a2_before b),
          'A: the refused updates changed nothing');
select is(public.update_mailbox((select id from t_box where name = 'a2'), p_port => (select port from t_a2_before)),
          true, 'A: the same port again needs no credential (nothing moves)');
select is(public.update_mailbox((select id from t_box where name = 'a2'), p_folders => '{INBOX,Archive}', p_label => 'renamed',
                                p_enabled => true),
          true, 'A: folders, label and enabled change without the credential');
select is(public.update_mailbox((select id from t_box where name = 'a2'), p_port => 1143, p_folders => '{INBOX,Sent}',
                                p_credential => 'pgtap-cred-a2-again'),
          true, 'A: update_mailbox of the port, with the credential given again');
select is((select format('%s|%s|%s', m.port, m.folders, m.tls_mode) from public.mailboxes m where m.id = (select id from t_box where name = 'a2')),
          '1143|{INBOX,Sent}|starttls', 'A: the changed settings are stored, the others kept');

-- Removing a mailbox.
select is(public.remove_mailbox((select id from t_box where name = 'a2')), true, 'A: remove_mailbox of A''s own mailbox returns true');
select is(public.remove_mailbox((select id from t_box where name = 'a2')), false, 'A: removing it again returns false');

-- Refusals say what kind of problem, never a constraint's name or the failing row.
select throws_ok($$select public.add_mailbox('bad host!', 993, 'u', 'pgtap-cred-x')$$, '23514',
                 'Cannot add mailbox: invalid settings', 'A: an invalid setting gets a generic refusal');
select throws_ok($$select public.update_mailbox((select id from t_box where name = 'a1'), p_port => 0)$$, '23514',
                 'Cannot update mailbox: invalid settings', 'A: ... from update_mailbox too');
-- Control characters (terminal escapes, CR/LF into an IMAP command) and unbounded folders.
select throws_ok(q, '23514', 'Cannot add mailbox: invalid settings', format('A: refused: %s', q))
from unnest(array[
  $$select public.add_mailbox('imap.example.test', 993, 'u', 'pgtap-cred-x', p_label => E'red \x1b[31m')$$,
  $$select public.add_mailbox('imap.example.test', 993, E'u\r\nA1 LOGOUT', 'pgtap-cred-x')$$,
  $$select public.add_mailbox('imap.example.test', 993, 'u', 'pgtap-cred-x', p_folders => array[E'INBOX\n'])$$,
  $$select public.add_mailbox('imap.example.test', 993, 'u', 'pgtap-cred-x', p_folders => array['INBOX', ''])$$,
  $$select public.add_mailbox('imap.example.test', 993, 'u', 'pgtap-cred-x', p_folders => array[repeat('x', 10001)])$$
]) q;

-- At most 10 mailboxes per user.
select lives_ok($$select public.add_mailbox(format('cap%s.a.example.test', n), 993, 'u', 'pgtap-cred-cap')
                    from generate_series(1, 10 - (select count(*) from public.mailboxes)::integer) n$$,
                'A: up to ten mailboxes are accepted');
select is((select count(*) from public.mailboxes), 10::bigint, 'A: ten mailboxes');
select throws_ok($$select public.add_mailbox('cap11.a.example.test', 993, 'u', 'pgtap-cred-cap')$$, '54000',
                 'Cannot add mailbox: at most 10 mailboxes per user', 'A: the eleventh mailbox is refused');
select is((select count(*) from public.mailboxes), 10::bigint, 'A: still ten');

-- Signed in as nobody.
select tests.authenticate_as_role('authenticated');
select is((select count(*) from public.mailboxes m where m.id in (select id from t_box)), 0::bigint,
          'authenticated without a sub reads no mailbox');
select is((select count(*) from public.emails e where e.mailbox_id in (select id from t_box)), 0::bigint,
          'authenticated without a sub reads no email');
select throws_ok($$select public.add_mailbox('imap.example.test', 993, 'u', 'pgtap-cred-x')$$, '42501',
                 'Cannot add mailbox: not signed in', 'add_mailbox without a sub is refused (42501)');
select throws_ok($$select public.remove_mailbox((select id from t_box where name = 'a1'))$$, '42501',
                 'Cannot remove mailbox: not signed in', 'remove_mailbox without a sub is refused (42501)');

-- User B sees only B's.
select tests.authenticate_as('b');
select is(array(select m.id from public.mailboxes m), array(select id from t_box where name = 'b1'),
          'B reads exactly B''s one mailbox');
select is((select array_agg(e.uid order by e.uid) from public.emails e), array[1::bigint, 2::bigint],
          'B reads exactly B''s two emails');
select tests.clear_authentication();

-- anon reads nothing.
select tests.authenticate_as_role('anon');
select throws_ok(format('select count(*) from public.%I', t), '42501', format('permission denied for table %s', t),
                 format('anon cannot read public.%s', t))
from unnest(array['mailboxes', 'emails']) t;
select throws_ok($$select * from auto_sync.mailbox_credentials$$, '42501', null, 'anon cannot read auto_sync.mailbox_credentials');
select throws_ok($$select * from vault.decrypted_secrets$$, '42501', null, 'anon cannot read vault.decrypted_secrets');
select tests.clear_authentication();

-------------------------------------------------------------------------------
-- What the user calls did, seen as postgres
-------------------------------------------------------------------------------
select is(
  (select format('%s|%s|%s|%s|%s', m.host, m.port, m.enabled, m.username, m.user_id) from public.mailboxes m
    where m.id = (select id from t_box where name = 'b1')),
  'imap.b.example.test|993|t|bob@b.example.test|f1b00000-0000-4000-8000-00000000000b',
  'B''s mailbox is unchanged after A''s attempts');
select is(auto_sync.mailbox_credential((select id from t_box where name = 'b1')), (select value from t_secret where name = 'b1'),
          'B''s credential is unchanged after A''s attempt');
select is((select count(*) from vault.decrypted_secrets s where s.decrypted_secret = 'pgtap-cred-stolen-0000'), 0::bigint,
          'A''s credential for B''s mailbox went nowhere');
select is(
  (select format('%s|%s', s.decrypted_secret = (select value from t_secret where name = 'a3-new'), s.name = 'mailbox:' || c.mailbox_id)
     from auto_sync.mailbox_credentials c join vault.decrypted_secrets s on s.id = c.secret_id
    where c.mailbox_id = (select id from t_box where name = 'a3')),
  't|t', 'update_mailbox with a credential updates the Vault secret in place');
select is((select count(*) from vault.decrypted_secrets s where s.decrypted_secret = (select value from t_secret where name = 'a3')),
          0::bigint, 'the old credential of a3 is gone from Vault');

-- remove_mailbox took the mailbox, its emails, its folder state and its Vault secret.
select is((select count(*) from public.mailboxes where id = (select id from t_box where name = 'a2')), 0::bigint,
          'remove_mailbox: the mailbox is gone');
select is((select count(*) from public.emails where mailbox_id = (select id from t_box where name = 'a2')), 0::bigint,
          'remove_mailbox: its emails are gone');
select is((select count(*) from auto_sync.folder_state where mailbox_id = (select id from t_box where name = 'a2')), 0::bigint,
          'remove_mailbox: its folder state is gone');
select is((select count(*) from auto_sync.mailbox_credentials where mailbox_id = (select id from t_box where name = 'a2')), 0::bigint,
          'remove_mailbox: its credential link is gone');
select is((select count(*) from vault.decrypted_secrets s where s.decrypted_secret = (select value from t_secret where name = 'a2')
              or s.name = 'mailbox:' || (select id from t_box where name = 'a2')), 0::bigint,
          'remove_mailbox: its Vault secret is deleted (trigger)');
select is((select count(*) from public.emails where mailbox_id = (select id from t_box where name = 'a1')), 10::bigint,
          'remove_mailbox: A''s other mailbox keeps its emails');

-- Deleting the auth user takes everything of theirs, Vault secret included.
insert into t_result
select 'c1-secret', c.secret_id::text from auto_sync.mailbox_credentials c where c.mailbox_id = (select id from t_box where name = 'c1');
select is((select count(*) from vault.secrets where id = (select value::uuid from t_result where name = 'c1-secret')), 1::bigint,
          'user C''s credential is in Vault before C is deleted');
delete from auth.users where id = 'f1c00000-0000-4000-8000-00000000000c';
select is(
  (select format('%s|%s|%s|%s',
                 (select count(*) from public.mailboxes where user_id = 'f1c00000-0000-4000-8000-00000000000c'),
                 (select count(*) from public.emails where user_id = 'f1c00000-0000-4000-8000-00000000000c'),
                 (select count(*) from auto_sync.mailbox_credentials where mailbox_id = (select id from t_box where name = 'c1')),
                 (select count(*) from auto_sync.folder_state where mailbox_id = (select id from t_box where name = 'c1')))),
  '0|0|0|0', 'deleting the user cascades: no mailbox, email, credential link or folder state left');
select is((select count(*) from vault.secrets where id = (select value::uuid from t_result where name = 'c1-secret')), 0::bigint,
          'deleting the user deletes their Vault secret too');

-- After all of it: no credential anywhere it should not be.
select is(
  (select count(*) from t_secret t
    where exists (select 1 from public.mailboxes m where m.id in (select id from t_box) and position(t.value in row_to_json(m)::text) > 0)
       or exists (select 1 from public.emails e where e.mailbox_id in (select id from t_box) and position(t.value in row_to_json(e)::text) > 0)
       or exists (select 1 from auto_sync.folder_state f where f.mailbox_id in (select id from t_box) and position(t.value in row_to_json(f)::text) > 0)),
  0::bigint, 'no credential appears in public.mailboxes, public.emails or auto_sync.folder_state');

select * from finish();
rollback;
