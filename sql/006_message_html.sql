-- 006_message_html.sql: replies and notes keep the HTML that cmark made
-- of them when they were written, so a status page that shows an answer
-- renders no Markdown (it was nearly half of GET /o/TOKEN's work).
ALTER TABLE messages ADD COLUMN html TEXT;
                        -- reply and note: body rendered by cmark (unsafe
                        -- HTML off) when written; NULL for the client's
                        -- text, and for rows older than this migration
                        -- (rendered when shown)
