-- q7 highest bid: tumbling 10 s windows over bids; per window every bid whose price equals
-- the window's highest price (a window join of the windowed bids with the per-window
-- maximum, on the window -- not Flink's original BETWEEN-on-dateTime formulation).
-- window_start|auction|price|bidder|dateTime
SELECT (CAST(TIMESTAMPDIFF(SECOND, TIMESTAMP '1970-01-01 00:00:00', B.window_start) AS BIGINT) * 1000 + MOD(EXTRACT(MILLISECOND FROM B.window_start), 1000)) AS window_start, B.auction, B.price, B.bidder, B.ms AS `dateTime`
FROM (
    SELECT * FROM TABLE(TUMBLE(TABLE bid, DESCRIPTOR(`dateTime`), INTERVAL '10' SECOND))
) AS B
INNER JOIN (
    SELECT MAX(price) AS max_price, window_start, window_end
    FROM TABLE(TUMBLE(TABLE bid, DESCRIPTOR(`dateTime`), INTERVAL '10' SECOND))
    GROUP BY window_start, window_end
) AS M
ON B.window_start = M.window_start AND B.window_end = M.window_end AND B.price = M.max_price
