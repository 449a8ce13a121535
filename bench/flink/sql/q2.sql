-- q2 selection: bids with auction % 123 == 0.
-- auction|price
SELECT auction, price FROM bid WHERE MOD(auction, 123) = 0
