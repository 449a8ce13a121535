-- q8 monitor new users: tumbling 10 s windows; persons who registered in a window and
-- opened at least one auction (as seller) in the same window, once per window (both sides
-- are window aggregations -- distinct per window -- joined with a window join).
-- person_id|name|window_start
SELECT P.id AS person_id, P.name, (CAST(TIMESTAMPDIFF(SECOND, TIMESTAMP '1970-01-01 00:00:00', P.window_start) AS BIGINT) * 1000 + MOD(EXTRACT(MILLISECOND FROM P.window_start), 1000)) AS window_start
FROM (
    SELECT id, name, window_start, window_end
    FROM TABLE(TUMBLE(TABLE person, DESCRIPTOR(`dateTime`), INTERVAL '10' SECOND))
    GROUP BY id, name, window_start, window_end
) AS P
INNER JOIN (
    SELECT seller, window_start, window_end
    FROM TABLE(TUMBLE(TABLE auction, DESCRIPTOR(`dateTime`), INTERVAL '10' SECOND))
    GROUP BY seller, window_start, window_end
) AS A
ON P.id = A.seller AND P.window_start = A.window_start AND P.window_end = A.window_end
