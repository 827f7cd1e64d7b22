-- 018_pay_methods.sql: the ledger's method becomes one of a fixed list
-- (issue 16): card, bank_transfer, paypal, cash, other (src/pay_method.c).
-- The reference stays free text. What was typed before is mapped, case
-- and surrounding blanks aside:
--   bank, bank transfer, bank_transfer, transfer     -> bank_transfer
--   card                                              -> card (Stripe's
--     rows and hand-recorded ones alike, as before)
--   visa, mastercard, amex, credit card, debit card   -> card where the
--     reference is a Stripe id (pi_, cs_, re_), else other
--   paypal -> paypal; cash -> cash
--   anything else (empty too)                         -> other, the old
--     text kept at the front of the reference ("cheque 1234").
-- Only 'card' rows with a Stripe id are in ledger_card_once: a row that
-- becomes card here has such an id and none had it as card before.

UPDATE ledger SET method = CASE
    WHEN lower(trim(method)) IN ('bank', 'bank transfer', 'bank_transfer',
                                 'transfer') THEN 'bank_transfer'
    WHEN lower(trim(method)) = 'card' THEN 'card'
    WHEN lower(trim(method)) IN ('visa', 'mastercard', 'amex', 'credit card',
                                 'debit card')
         AND (reference GLOB 'pi_?*' OR reference GLOB 'cs_?*' OR
              reference GLOB 're_?*') THEN 'card'
    WHEN lower(trim(method)) = 'paypal' THEN 'paypal'
    WHEN lower(trim(method)) = 'cash' THEN 'cash'
    ELSE 'other' END,
  reference = CASE
    WHEN lower(trim(method)) IN ('bank', 'bank transfer', 'bank_transfer',
                                 'transfer', 'card', 'paypal', 'cash')
         THEN reference
    WHEN lower(trim(method)) IN ('visa', 'mastercard', 'amex', 'credit card',
                                 'debit card')
         AND (reference GLOB 'pi_?*' OR reference GLOB 'cs_?*' OR
              reference GLOB 're_?*') THEN reference
    WHEN trim(method) = '' THEN reference
    WHEN reference = '' THEN trim(method)
    ELSE trim(method) || ' ' || reference END;
