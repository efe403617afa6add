-- The buyer's e-mail address, from the user token an order was made with:
-- where the order's receipt goes. Empty for orders made before.
ALTER TABLE partner_orders ADD COLUMN email TEXT NOT NULL DEFAULT '';
