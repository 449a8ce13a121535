-- q0 pass-through: every bid.
-- auction|bidder|price|channel|url|dateTime|extra
SELECT auction, bidder, price, channel, url, ms AS `dateTime`, extra FROM bid
