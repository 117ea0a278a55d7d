-- The language a user chose with /language (ru, en), over what Telegram says (users.language keeps
-- Telegram's language_code at first contact). NULL: never chosen, Telegram's word holds.
ALTER TABLE users ADD COLUMN IF NOT EXISTS lang text;
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'users_lang_known') THEN
        ALTER TABLE users ADD CONSTRAINT users_lang_known CHECK (lang IS NULL OR lang IN ('ru', 'en'));
    END IF;
END $$;
