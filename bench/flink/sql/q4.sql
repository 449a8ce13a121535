-- q4 average closing price per category. Per auction the highest price of its bids with
-- auction.dateTime <= bid.dateTime <= auction.expires (inclusive; compared as BIGINT epoch
-- ms, so this is a regular join, not an interval join); auctions without such a bid drop out
-- of the inner join. Per category SUM / COUNT of those prices: BIGINT / BIGINT truncates,
-- exactly `sum / count` (Flink's AVG on BIGINT also truncates, but is spelled out here).
-- An updating result: the final table is what is compared.
-- category|avg_price
SELECT Q.category, SUM(Q.final) / COUNT(*) AS avg_price
FROM (
    SELECT A.id, A.category, MAX(B.price) AS final
    FROM auction AS A INNER JOIN bid AS B ON A.id = B.auction
    WHERE B.ms BETWEEN A.ms AND A.expires
    GROUP BY A.id, A.category
) AS Q
GROUP BY Q.category
