-- pgTAP: where dispatch() may send signed requests (settings.endpoint_url): https
-- anywhere; plain http only to the local hosts (127.0.0.1, localhost,
-- host.docker.internal, kong) or a host the operator lists in settings.internal_hosts,
-- checked in the same row; host names are bounded (DNS label syntax, lower case).
--
-- One transaction, rolled back.
begin;
\ir support/test_helpers.psql

select plan(37);

-- https anywhere; plain http to the built-in local hosts.
select lives_ok(format('update auto_sync.settings set endpoint_url = %L', u), format('accepted: %s', u))
from unnest(array[
  'https://abcdefghijklmnop.supabase.co/functions/v1/cron-auto-sync',
  'https://supabase.example.com:8443/functions/v1/cron-auto-sync',
  'http://127.0.0.1:54321/functions/v1/cron-auto-sync',
  'http://localhost:54321/functions/v1/cron-auto-sync',
  'http://host.docker.internal:54321/functions/v1/cron-auto-sync',
  'http://kong:8000/functions/v1/cron-auto-sync'
]) u;

-- Coolify's Kong is refused over plain http until the operator names it.
select throws_ok($$update auto_sync.settings set endpoint_url = 'http://supabase-kong:8000/functions/v1/cron-auto-sync'$$,
                 '23514', null, 'http://supabase-kong:8000 is refused while internal_hosts is empty');
select is(auto_sync.endpoint_url_problem('http://supabase-kong:8000/functions/v1/cron-auto-sync', '{}'),
          'is plain http to a host that is neither local nor in settings.internal_hosts',
          'endpoint_url_problem says why');

-- Named, in the same row (one statement), it is accepted.
select lives_ok($$update auto_sync.settings
                     set internal_hosts = '{supabase-kong}',
                         endpoint_url = 'http://supabase-kong:8000/functions/v1/cron-auto-sync'$$,
                'internal_hosts = {supabase-kong} with http://supabase-kong:8000/... is accepted');
select is((select endpoint_url from auto_sync.settings),
          'http://supabase-kong:8000/functions/v1/cron-auto-sync', 'the setting holds it');
select throws_ok($$update auto_sync.settings set internal_hosts = '{}'$$, '23514', null,
                 'dropping the host the endpoint uses is refused (checked with the URL)');
select lives_ok($$update auto_sync.settings set internal_hosts = '{supabase-kong,functions.internal}'$$,
                'adding a second host keeps the endpoint valid');

-- The allow-list is matched by whole host, never as a pattern or a prefix.
select throws_ok(format('update auto_sync.settings set endpoint_url = %L', u), '23514', null,
                 format('refused: %s', u))
from unnest(array[
  'http://supabase-kong.evil.example:8000/functions/v1/cron-auto-sync',
  'http://supabase-kongx:8000/functions/v1/cron-auto-sync',
  'http://evil.example/supabase-kong:8000/',
  'http://supabase-kong:8000@evil.example/functions/v1/cron-auto-sync',
  'http://user:pass@supabase-kong:8000/functions/v1/cron-auto-sync',
  'https://user:pass@abcdefghijklmnop.supabase.co/functions/v1/cron-auto-sync',
  'http://10.0.0.5:8000/functions/v1/cron-auto-sync',
  'http://example.com/functions/v1/cron-auto-sync',
  'ftp://supabase-kong/functions/v1/cron-auto-sync',
  'https://supabase.example.com/functions/v1/cron auto sync',
  'https://supabase.example.com/functions/v1/cron-auto-sync' || chr(10),
  'https:///functions/v1/cron-auto-sync',
  'supabase-kong:8000/functions/v1/cron-auto-sync'
]) u;

-- Host names: DNS label syntax, lower case, bounded.
select throws_ok(format('update auto_sync.settings set internal_hosts = %L', h), '23514', null,
                 format('internal_hosts refused: %s', h))
from unnest(array[
  '{Supabase-Kong}',
  '{"supabase-kong "}',
  '{user@supabase-kong}',
  '{-kong}',
  '{kong-}',
  '{a..b}',
  '{' || repeat('a', 64) || '}',
  '{supabase-kong:8000}',
  '{""}',
  '{kong,NULL}'
]) h;
select throws_ok(format('update auto_sync.settings set internal_hosts = %L',
                        (select array_agg('h' || i) from generate_series(1, 21) i)), '23514', null,
                 'internal_hosts refused: more than 20 names');
select is(auto_sync.internal_hosts_problem(array[repeat('a', 63) || '.example']), null,
          'a 63-character label is a valid host name');

select * from finish();
rollback;
