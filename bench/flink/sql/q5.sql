-- q5 hot items: sliding (HOP) windows of 10 s every 2 s over bids; per window the
-- auction(s) with the most bids -- every tied auction (a window join of the per-auction
-- counts with the per-window maximum count, so ties all come out).
-- window_start is converted from the UTC TIMESTAMP(3) to epoch ms (whole seconds via
-- TIMESTAMPDIFF, plus the millisecond field).
-- window_start|auction|num_bids
SELECT (CAST(TIMESTAMPDIFF(SECOND, TIMESTAMP '1970-01-01 00:00:00', C.window_start) AS BIGINT) * 1000 + MOD(EXTRACT(MILLISECOND FROM C.window_start), 1000)) AS window_start, C.auction, C.num_bids
FROM (
    SELECT auction, COUNT(*) AS num_bids, window_start, window_end
    FROM TABLE(HOP(TABLE bid, DESCRIPTOR(`dateTime`), INTERVAL '2' SECOND, INTERVAL '10' SECOND))
    GROUP BY auction, window_start, window_end
) AS C
INNER JOIN (
    SELECT MAX(num_bids) AS max_bids, window_start, window_end
    FROM (
        SELECT auction, COUNT(*) AS num_bids, window_start, window_end
        FROM TABLE(HOP(TABLE bid, DESCRIPTOR(`dateTime`), INTERVAL '2' SECOND, INTERVAL '10' SECOND))
        GROUP BY auction, window_start, window_end
    )
    GROUP BY window_start, window_end
) AS M
ON C.window_start = M.window_start AND C.window_end = M.window_end AND C.num_bids = M.max_bids
