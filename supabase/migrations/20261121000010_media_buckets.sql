-- The two private buckets the worker reads from and writes to (DESIGN.md §5).
-- 2 GiB per object. The project's global upload limit (Dashboard > Storage >
-- Settings) must be at least this, or Storage refuses large files anyway.
-- Upsert: applying again restores these limits and types.

insert into storage.buckets (id, name, public, file_size_limit, allowed_mime_types)
values
  ('media-uploads', 'media-uploads', false, 2147483648, array[
    -- video, as browsers and `python worker.py enqueue` label it
    'video/mp4', 'video/x-m4v', 'video/quicktime', 'video/webm', 'video/x-matroska',
    'video/x-msvideo', 'video/avi', 'video/mp2t', 'video/3gpp', 'video/ogg', 'video/x-flv',
    -- audio; several spellings per format because browsers disagree
    'audio/mpeg', 'audio/mp3', 'audio/mp4', 'audio/x-m4a', 'audio/aac', 'audio/x-aac',
    'audio/wav', 'audio/x-wav', 'audio/wave', 'audio/flac', 'audio/x-flac',
    'audio/ogg', 'audio/webm', 'audio/3gpp'
  ]),
  ('media-outputs', 'media-outputs', false, 2147483648, array[
    'video/mp4', 'image/jpeg', 'image/webp',
    'audio/mp4', 'audio/mpeg', 'audio/wav', 'audio/flac',
    'application/vnd.apple.mpegurl', 'application/x-mpegurl', 'video/mp2t',
    'text/vtt', 'application/json'
  ])
on conflict (id) do update
  set public = excluded.public,
      file_size_limit = excluded.file_size_limit,
      allowed_mime_types = excluded.allowed_mime_types;
