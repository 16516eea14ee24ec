-- pgTAP: public.enable_auto_sync / disable_auto_sync / get_auto_sync as signed-in users:
-- each acts for auth.uid() only (the interval bound itself: schedule_enable_test.sql).
--
-- One transaction, rolled back.
begin;
\ir support/test_helpers.psql

select plan(19);

select tests.create_supabase_user('a', 'a11ce000-0000-4000-8000-00000000000a');
select tests.create_supabase_user('b', 'b0b00000-0000-4000-8000-00000000000b');

-- Signed in as nobody (authenticated, no sub claim).
select tests.authenticate_as_role('authenticated');
select throws_ok($$select * from public.enable_auto_sync('10 minutes')$$, '42501',
                 'Cannot enable auto-sync: not signed in', 'enable_auto_sync without a sub claim is refused (42501)');
select throws_ok($$select public.disable_auto_sync()$$, '42501',
                 'Cannot disable auto-sync: not signed in', 'disable_auto_sync without a sub claim is refused (42501)');
select is((select count(*) from public.get_auto_sync()), 0::bigint, 'get_auto_sync without a sub claim returns no row');

-- User A, the owner.
select tests.authenticate_as('a');
select is((select count(*) from public.get_auto_sync()), 0::bigint, 'A: no schedule before enabling');
select throws_ok($$select * from public.enable_auto_sync('4 minutes')$$, '22023',
                 'Cannot enable auto-sync: interval "00:04:00" is shorter than 5 minutes',
                 'A: an interval under 5 minutes is refused (22023)');
select throws_ok($$select * from public.enable_auto_sync(null)$$, '22023', null,
                 'A: a null interval is refused (22023)');
select throws_ok($$select * from public.enable_auto_sync('300000 years')$$, '22023',
                 'Cannot enable auto-sync: interval "300000 years" is longer than 30 days',
                 'A: an interval over 30 days is refused (22023): it would overflow every tick''s dispatch()');
select is(
  (select format('%s|%s|%s', e.enabled, e.every, e.next_run_at = now()) from public.enable_auto_sync('10 minutes') e),
  't|00:10:00|t',
  'A: enable_auto_sync(10 minutes) returns enabled, the interval, and due now');
select is(
  (select format('%s|%s|%s', g.enabled, g.every, g.last_outcome) from public.get_auto_sync() g),
  't|00:10:00|',
  'A: get_auto_sync shows A''s own schedule');

-- User B, another user.
select tests.authenticate_as('b');
select is((select count(*) from public.get_auto_sync()), 0::bigint, 'B: get_auto_sync does not return A''s schedule');
select is(public.disable_auto_sync(), false, 'B: disable_auto_sync returns false (B has no schedule)');
select is(
  (select format('%s|%s', e.enabled, e.every) from public.enable_auto_sync('5 minutes') e),
  't|00:05:00',
  'B: 5 minutes, the minimum, is accepted');
select is(
  (select format('%s|%s', g.enabled, g.every) from public.get_auto_sync() g),
  't|00:05:00',
  'B: get_auto_sync shows only B''s schedule');
select is(public.disable_auto_sync(), true, 'B: disable_auto_sync disables B''s schedule');
select is((select g.enabled from public.get_auto_sync() g), false, 'B: get_auto_sync shows B disabled');

-- Back to A: B's calls left A alone.
select tests.authenticate_as('a');
select is(
  (select format('%s|%s', g.enabled, g.every) from public.get_auto_sync() g),
  't|00:10:00',
  'A: still enabled every 10 minutes after B enabled and disabled');
select tests.clear_authentication();

select is(
  (select array_agg(format('%s:%s:%s', s.user_id, s.enabled, s.every) order by s.user_id)
     from auto_sync.schedules s
    where s.user_id in ('a11ce000-0000-4000-8000-00000000000a', 'b0b00000-0000-4000-8000-00000000000b')),
  array['a11ce000-0000-4000-8000-00000000000a:t:00:10:00',
        'b0b00000-0000-4000-8000-00000000000b:f:00:05:00'],
  'the table holds exactly A (enabled, 10 min) and B (disabled, 5 min)');

select tests.authenticate_as('a');
select is(public.disable_auto_sync(), true, 'A: disable_auto_sync disables A''s own schedule');
select is((select g.enabled from public.get_auto_sync() g), false, 'A: get_auto_sync shows A disabled');
select tests.clear_authentication();

select * from finish();
rollback;
