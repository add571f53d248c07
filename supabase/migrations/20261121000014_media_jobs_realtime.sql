-- Web apps watch their jobs through Supabase Realtime (postgres_changes), which
-- streams the tables in the supabase_realtime publication and applies the
-- table's RLS to each subscriber. Skipped where there is no such publication
-- (plain Postgres without Realtime) or it already carries the table.

do $$
begin
  if not exists (select 1 from pg_catalog.pg_publication where pubname = 'supabase_realtime') then
    raise notice 'no supabase_realtime publication: media_jobs is not streamed by Realtime';
  elsif exists (select 1 from pg_catalog.pg_publication where pubname = 'supabase_realtime' and puballtables) then
    null;  -- a FOR ALL TABLES publication already streams media_jobs
  elsif not exists (select 1 from pg_catalog.pg_publication_tables
                    where pubname = 'supabase_realtime' and schemaname = 'public' and tablename = 'media_jobs') then
    alter publication supabase_realtime add table public.media_jobs;
  end if;
end $$;
