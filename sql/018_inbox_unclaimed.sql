-- Issue 21: the dispatcher's claim read every row it already held (state 1, its own) to find the
-- unclaimed ones after them: about 146 rows per update under load. Once a consuming session has
-- taken over what earlier sessions left claimed, nothing but unclaimed rows can be new to it (a
-- claim is fenced: no other session can claim while it leads), so its later claims read only
-- this index.
CREATE INDEX IF NOT EXISTS inbox_unclaimed ON inbox (bot_id, update_id) WHERE state = 0;
