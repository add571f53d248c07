-- Storage RLS for the media buckets (DESIGN.md §5, §8). Storage runs each API
-- request as the caller's role, so these policies are what it enforces.
--   media-uploads: a signed-in user reads and writes only under `{their id}/`.
--   media-outputs: a signed-in user reads only under `{their id}/`; only the
--   worker (service role, which bypasses RLS) writes there.
-- RLS on storage.objects is already on in every Supabase project, and migrations
-- may not alter that table, so this file only (re)creates its own policies.

drop policy if exists "media-uploads: owners read their folder" on storage.objects;
create policy "media-uploads: owners read their folder" on storage.objects
  for select to authenticated
  using (bucket_id = 'media-uploads' and (storage.foldername(name))[1] = (select auth.uid())::text);

drop policy if exists "media-uploads: owners add to their folder" on storage.objects;
create policy "media-uploads: owners add to their folder" on storage.objects
  for insert to authenticated
  with check (bucket_id = 'media-uploads' and (storage.foldername(name))[1] = (select auth.uid())::text);

-- Both clauses: a user may neither touch another folder nor move a file into one.
drop policy if exists "media-uploads: owners replace in their folder" on storage.objects;
create policy "media-uploads: owners replace in their folder" on storage.objects
  for update to authenticated
  using (bucket_id = 'media-uploads' and (storage.foldername(name))[1] = (select auth.uid())::text)
  with check (bucket_id = 'media-uploads' and (storage.foldername(name))[1] = (select auth.uid())::text);

drop policy if exists "media-uploads: owners delete from their folder" on storage.objects;
create policy "media-uploads: owners delete from their folder" on storage.objects
  for delete to authenticated
  using (bucket_id = 'media-uploads' and (storage.foldername(name))[1] = (select auth.uid())::text);

drop policy if exists "media-outputs: owners read their folder" on storage.objects;
create policy "media-outputs: owners read their folder" on storage.objects
  for select to authenticated
  using (bucket_id = 'media-outputs' and (storage.foldername(name))[1] = (select auth.uid())::text);
