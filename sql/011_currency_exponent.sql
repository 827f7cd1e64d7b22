-- 011_currency_exponent.sql: every amount in its currency's own minor
-- unit (issue 15). Until now pmb read every amount with two decimals and
-- stored it times 100, whatever the currency: "price = 1500" with JPY
-- was stored as 150000, and a bank transfer of 12.34 BHD as 1234. From
-- this version an amount counts the minor unit of ISO 4217 (src/currency.c):
-- a yen is 1, a pound 100 pence, a Bahraini dinar 1000 fils. This
-- migration brings the amounts already stored to that unit. The lists of
-- codes below are src/currency.c's table; a currency not listed has two
-- decimals, as before, and is left as it is.
--
-- Zero-decimal currencies (BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI
-- VND VUV XAF XOF XPF) were stored 100 times too large: divided by 100.
-- An amount that is no multiple of 100 ("1500.50" typed for yen) cannot
-- have moved: no bank pays half a yen. Such a row is kept (the ledger is
-- the record of what happened, and a payment row dropped would make a
-- paid order look unpaid), rounded to the nearest whole unit, half up,
-- never below 1 in the ledger (its CHECK is amount > 0); and an audit row
-- says what it was and what it is now, so that the consultant can see it
-- on the order page and set it right by a payment or refund row. Refusing
-- to migrate instead would leave the operator with a database that the
-- new programs refuse and no tool to change it.
--
-- Three-decimal currencies (BHD IQD JOD KWD LYD OMR TND) were stored 10
-- times too small (two decimals where they have three): multiplied by 10,
-- exactly. Four-decimal ones (CLF UYW) likewise, by 100.
--
-- checkout_sessions.amount and card_refunds.amount (010) are left alone:
-- they came with the same release as this migration and are only written
-- by programs that already count in the currency's own minor unit.

-- The currencies whose amounts change, and how: an amount becomes
-- (amount * mul + div / 2) / div, exact for mul and rounded half up for
-- div. A temporary table, gone when the connection closes and dropped
-- below; it names src/currency.c's codes once for every statement.
-- code: the ISO 4217 code; mul, div: as above.
CREATE TEMP TABLE m011_rescale (
  code  TEXT PRIMARY KEY,
  mul   INTEGER NOT NULL,
  div   INTEGER NOT NULL
);
INSERT INTO m011_rescale (code, mul, div) VALUES
  ('BIF', 1, 100), ('CLP', 1, 100), ('DJF', 1, 100), ('GNF', 1, 100),
  ('ISK', 1, 100), ('JPY', 1, 100), ('KMF', 1, 100), ('KRW', 1, 100),
  ('PYG', 1, 100), ('RWF', 1, 100), ('UGX', 1, 100), ('UYI', 1, 100),
  ('VND', 1, 100), ('VUV', 1, 100), ('XAF', 1, 100), ('XOF', 1, 100),
  ('XPF', 1, 100),
  ('BHD', 10, 1), ('IQD', 10, 1), ('JOD', 10, 1), ('KWD', 10, 1),
  ('LYD', 10, 1), ('OMR', 10, 1), ('TND', 10, 1),
  ('CLF', 100, 1), ('UYW', 100, 1);

-- The audit rows first, while the old amounts are still there to quote:
-- one for each amount of a zero-decimal currency that is no multiple of
-- 100. audit.at: now; user_id: NULL (the system); action: what happened;
-- order_id: the order concerned; detail: the amount before and after.
INSERT INTO audit (at, user_id, action, order_id, ip, detail)
  SELECT CAST(strftime('%s', 'now') AS INTEGER), NULL, 'amount rounded',
         o.id, '', printf('migration 011: the price of %.2f %s, which has '
         || 'no decimals, is now %d %s', o.price / 100.0, o.currency,
         (o.price + 50) / 100, o.currency)
  FROM orders o JOIN m011_rescale m ON m.code = o.currency
  WHERE m.div = 100 AND o.price % 100 <> 0;
INSERT INTO audit (at, user_id, action, order_id, ip, detail)
  SELECT CAST(strftime('%s', 'now') AS INTEGER), NULL, 'amount rounded',
         l.order_id, '', printf('migration 011: ledger row %d, a %s of '
         || '%.2f %s, which has no decimals, is now %d %s', l.id, l.kind,
         l.amount / 100.0, l.currency, MAX(1, (l.amount + 50) / 100),
         l.currency)
  FROM ledger l JOIN m011_rescale m ON m.code = l.currency
  WHERE m.div = 100 AND l.amount % 100 <> 0;

-- orders.price (the price copied from the settings when the order was
-- made; CHECK price >= 0).
UPDATE orders SET price = (SELECT (price * m.mul + m.div / 2) / m.div
                           FROM m011_rescale m WHERE m.code = currency)
  WHERE currency IN (SELECT code FROM m011_rescale);

-- ledger.amount (money in or out, in the ledger row's own currency;
-- CHECK amount > 0): the same, never below 1.
UPDATE ledger SET amount = (SELECT MAX(1, (amount * m.mul + m.div / 2) / m.div)
                            FROM m011_rescale m WHERE m.code = currency)
  WHERE currency IN (SELECT code FROM m011_rescale);

DROP TABLE m011_rescale;
