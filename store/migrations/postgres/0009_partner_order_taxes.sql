-- A partner order's tax: its rate in millionths of the amount (19% =
-- 190000) and the tax in minor units, both included in amount, which is
-- what the partner charges. Orders priced before taxes have none.
ALTER TABLE partner_orders ADD COLUMN tax_rate BIGINT NOT NULL DEFAULT 0;
ALTER TABLE partner_orders ADD COLUMN tax BIGINT NOT NULL DEFAULT 0;
