-- The Nexmark source: the JSON-lines file(s) of docs/nexmark.md (Flink's Nexmark row shape,
-- every dateTime/expires in epoch milliseconds) read with the filesystem connector.
-- ${INPUT} (a file or a directory of shards) and ${WATERMARK_DELAY} (seconds, e.g. 4.000)
-- are filled in by nexmark.py. The session time zone is UTC (set by nexmark.py), so the
-- TIMESTAMP(3) window_start/window_end of the window TVFs are UTC wall-clock times.
CREATE TEMPORARY TABLE nexmark (
    event_type INT,
    person ROW<
        id BIGINT, name STRING, emailAddress STRING, creditCard STRING,
        city STRING, state STRING, `dateTime` BIGINT, extra STRING>,
    auction ROW<
        id BIGINT, itemName STRING, description STRING, initialBid BIGINT,
        reserve BIGINT, `dateTime` BIGINT, expires BIGINT, seller BIGINT,
        category BIGINT, extra STRING>,
    bid ROW<
        auction BIGINT, bidder BIGINT, price BIGINT, channel STRING, url STRING,
        `dateTime` BIGINT, extra STRING>,
    -- the event time, epoch ms, and as the rowtime attribute
    ms AS CASE
        WHEN event_type = 0 THEN person.`dateTime`
        WHEN event_type = 1 THEN auction.`dateTime`
        ELSE bid.`dateTime`
    END,
    `dateTime` AS TO_TIMESTAMP_LTZ(CASE
        WHEN event_type = 0 THEN person.`dateTime`
        WHEN event_type = 1 THEN auction.`dateTime`
        ELSE bid.`dateTime`
    END, 3),
    WATERMARK FOR `dateTime` AS `dateTime` - INTERVAL '${WATERMARK_DELAY}' SECOND
) WITH (
    'connector' = 'filesystem',
    'path' = '${INPUT}',
    'format' = 'json',
    'json.fail-on-missing-field' = 'false',
    'json.ignore-parse-errors' = 'false'
);

CREATE TEMPORARY VIEW person AS
SELECT person.id, person.name, person.emailAddress, person.creditCard, person.city,
       person.state, ms, `dateTime`, person.extra
FROM nexmark WHERE event_type = 0;

CREATE TEMPORARY VIEW auction AS
SELECT auction.id, auction.itemName, auction.description, auction.initialBid,
       auction.reserve, ms, `dateTime`, auction.expires, auction.seller, auction.category,
       auction.extra
FROM nexmark WHERE event_type = 1;

CREATE TEMPORARY VIEW bid AS
SELECT bid.auction, bid.bidder, bid.price, bid.channel, bid.url, ms, `dateTime`, bid.extra
FROM nexmark WHERE event_type = 2;
