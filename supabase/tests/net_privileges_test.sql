-- pgTAP: the real pg_net's and Vault's grants, as Supabase leaves them, are locked down
-- by 20261201100000_net_privileges.sql: no API role (nor PUBLIC) may queue a request,
-- read the queue or the responses, or read Vault; postgres keeps, by name, what
-- dispatch(), reconcile_runs(), purge_history() and pg_net's worker need; and
-- auto_sync.extension_privileges_left() reports whatever is left.
begin;
\ir support/test_helpers.psql

select plan(42);

-- The real extensions, not stand-ins.
select is((select extversion from pg_extension where extname = 'pg_net'), '0.20.4',
          'pg_net is the real extension (0.20.5 reports 0.20.4)');
select is((select extversion from pg_extension where extname = 'supabase_vault'), '0.3.1',
          'supabase_vault is the real extension');
select is((select extversion from pg_extension where extname = 'pg_cron'), '1.6',
          'pg_cron is 1.6');

select is_empty($$select * from auto_sync.extension_privileges_left()$$,
                'no privilege left to PUBLIC, anon, authenticated or service_role on net or vault');

-- PUBLIC (grantee 0) holds nothing on any object of net or vault.
select is_empty($$
  select n.nspname from pg_namespace n, aclexplode(n.nspacl) a
   where n.nspname in ('net', 'vault') and a.grantee = 0
  union all
  select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace, aclexplode(c.relacl) a
   where n.nspname in ('net', 'vault') and a.grantee = 0
  union all
  select p.proname from pg_proc p join pg_namespace n on n.oid = p.pronamespace,
         aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
   where n.nspname in ('net', 'vault') and a.grantee = 0$$,
  'PUBLIC holds no privilege on net or vault objects');

select is(has_table_privilege(r, t, 'select, insert, update, delete'), false,
          format('%s has no privilege on %s', r, t))
from unnest(array['anon', 'authenticated', 'service_role']) r
cross join unnest(array['net._http_response', 'net.http_request_queue']) t;

select is(has_sequence_privilege(r, 'net.http_request_queue_id_seq', 'usage, select, update'), false,
          format('%s has no privilege on net.http_request_queue_id_seq', r))
from unnest(array['anon', 'authenticated', 'service_role']) r;

select is(has_function_privilege(r, f, 'execute'), false, format('%s cannot execute %s', r, f))
from unnest(array['anon', 'authenticated', 'service_role']) r
cross join unnest(array['net.http_get(text, jsonb, jsonb, integer)',
                        'net.http_delete(text, jsonb, jsonb, integer, jsonb)',
                        'net.wake()',
                        'vault._crypto_aead_det_decrypt(bytea, bytea, bigint, bytea, bytea)']) f;

-- postgres keeps, by name (not through PUBLIC), what the project's functions and the worker use.
select ok(exists (select 1 from pg_class c, aclexplode(c.relacl) a
                   where c.oid = 'net.http_request_queue'::regclass
                     and a.grantee = 'postgres'::regrole and a.privilege_type = p),
          format('postgres holds %s on net.http_request_queue by name', p))
from unnest(array['INSERT', 'SELECT', 'DELETE']) p;
select ok(exists (select 1 from pg_class c, aclexplode(c.relacl) a
                   where c.oid = 'net._http_response'::regclass
                     and a.grantee = 'postgres'::regrole and a.privilege_type = p),
          format('postgres holds %s on net._http_response by name', p))
from unnest(array['SELECT', 'DELETE']) p;
select ok(exists (select 1 from pg_class c, aclexplode(c.relacl) a
                   where c.oid = 'net.http_request_queue_id_seq'::regclass
                     and a.grantee = 'postgres'::regrole and a.privilege_type = 'USAGE'),
          'postgres holds USAGE on the queue''s id sequence by name');
select ok(exists (select 1 from pg_proc p, aclexplode(p.proacl) a
                   where p.oid = 'net.http_post(text, jsonb, jsonb, jsonb, integer)'::regprocedure
                     and a.grantee = 'postgres'::regrole and a.privilege_type = 'EXECUTE'),
          'postgres holds EXECUTE on net.http_post by name');
select ok(exists (select 1 from pg_namespace n, aclexplode(n.nspacl) a
                   where n.nspname = 'net' and a.grantee = 'postgres'::regrole and a.privilege_type = 'USAGE'),
          'postgres holds USAGE on schema net by name');

-- As the API roles, for real.
select tests.authenticate_as_role('authenticated');
select throws_ok(q, '42501', null, format('authenticated: %s is refused', q))
from unnest(array[
  $$select * from net._http_response$$,
  $$select net.http_get('https://example.com/')$$,
  $$select net.wake()$$,
  $$select * from auto_sync.extension_privileges_left()$$
]) q;
select tests.authenticate_as_role('service_role');
select throws_ok(q, '42501', null, format('service_role: %s is refused', q))
from unnest(array[
  $$select * from net._http_response$$,
  $$delete from net.http_request_queue$$,
  $$select net.http_get('https://example.com/')$$
]) q;
select tests.clear_authentication();

-- The report names what is left, e.g. after a re-created pg_net granted PUBLIC again.
grant usage on schema net to public;
grant select on net._http_response to anon;
grant execute on function vault.create_secret(text, text, text, uuid) to service_role;
select is(
  array(select * from auto_sync.extension_privileges_left()),
  array['PUBLIC: USAGE on schema net',
        'anon: SELECT on table net._http_response',
        'service_role: EXECUTE on function vault.create_secret(text,text,text,uuid)'],
  'extension_privileges_left() lists each privilege left, by role and object');

select * from finish();
rollback;
