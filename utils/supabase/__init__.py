"""The Supabase Storage backend: HTTP requests, TUS resumable uploads and their pure arithmetic."""
